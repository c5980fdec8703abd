"""Differential conformance: the same scripted sessions against pyftpdlib and ftpd.

For each scenario both servers get the same fresh tree; the session is played against each, and
every difference in reply codes (and the pinned parts of reply texts), data and final tree must
be listed in ``allowlist.py`` with its reason. An allow-listed step asserts ftpd's own reply, and
an entry that no longer matches a difference fails too, so the list stays short and true.
tests/s3/test_s3_conformance.py plays the same scenarios against ftpd's S3 backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from .allowlist import ABSENT, ALLOW, EQUIVALENT_CODES, Allow
from .compare import allowlist_problems, check, compare
from .conftest import Pair
from .harness import Cmd, LocalHome, Recording, Reply, Scenario, Xfer, run_scenario
from .scenarios import BY_ID, SCENARIOS

pytestmark = [
    pytest.mark.conformance,
    # pyftpdlib imports asyncore/asynchat, deprecated since Python 3.10.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def play(pair: Pair, sc: Scenario) -> tuple[Recording, Recording]:
    ref_home, ftpd_home = LocalHome(pair.ref.home), LocalHome(pair.ftpd.root)
    ref_home.populate(sc)
    ftpd_home.populate(sc)
    ref = run_scenario(pair.ref.host, pair.ref.port, ref_home, sc, pair.ref.password)
    got = run_scenario(pair.ftpd.host, pair.ftpd.port, ftpd_home, sc, pair.ftpd.password)
    return ref, got


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.id)
def test_scenario(pair: Pair, sc: Scenario) -> None:
    ref, got = play(pair, sc)
    diffs = compare(ref, got)
    problems = check(sc, ref, got, diffs, ALLOW)
    assert not problems, f"{sc.id}:\n  " + "\n  ".join(problems) + f"\nftpd log tail:\n{_log(pair)}"


def _log(pair: Pair) -> str:
    return "\n".join(pair.ftpd.log().splitlines()[-30:])


# ---------------------------------------------------------------------------------- meta tests
def test_enough_scenarios_with_unique_ids() -> None:
    assert len(SCENARIOS) >= 80
    assert len(BY_ID) == len(SCENARIOS), "duplicate scenario ids"


def test_allowlist_entries_are_well_formed() -> None:
    assert allowlist_problems(ALLOW, BY_ID) == []
    for code, (same, reason) in EQUIVALENT_CODES.items():
        assert code != same and reason


def test_harness_is_deterministic_against_the_reference(pair: Pair) -> None:
    """Two runs against pyftpdlib itself compare equal: the comparison only sees real differences."""
    sc = Scenario(
        "self-check",
        (
            Cmd("TYPE I"),
            Xfer("LIST"),
            Xfer("RETR bin.dat"),
            Xfer("STOR n.bin", upload=b"n"),
            Cmd("MKD d"),
            Xfer("MLSD"),
        ),
    )
    home = LocalHome(pair.ref.home)
    runs = []
    for n in range(2):
        one = dataclasses.replace(sc, id=f"self-check-{n}")
        home.populate(one)
        runs.append(run_scenario(pair.ref.host, pair.ref.port, home, one, pair.ref.password))
    # The directory names differ (self-check-0/1) only inside 257 replies; MKD is step 4.
    runs[1].steps[4] = runs[0].steps[4]
    assert compare(runs[0], runs[1]) == []
    # ...and a changed reply, changed data and a changed tree are each reported.
    runs[1].steps[0].replies["reply"].code = 504
    runs[1].steps[2].data = b"other"
    runs[1].tree[b"extra"] = ("file", 1, "x")
    where = {d.where for d in compare(runs[0], runs[1])}
    assert where == {"0.reply", "2.data", "tree"}


def test_check_reports_each_kind_of_problem(pair: Pair) -> None:
    """``check`` fails an unlisted difference, a listed step where ftpd answers otherwise (code,
    a role the entry does not mention, a rule), a tree other than the listed one, and a stale
    entry: an allow-list cannot hide a failure."""
    sc = Scenario(
        "check-self-test",
        (Cmd("NOOP"), Cmd("TYPE I"), Cmd("NOOP"), Xfer("RETR a.txt"), Cmd("SIZE a.txt")),
    )
    home = LocalHome(pair.ref.home)
    home.populate(sc)
    ref = run_scenario(pair.ref.host, pair.ref.port, home, sc, pair.ref.password)
    got = dataclasses.replace(ref, steps=list(ref.steps))
    got.steps[0] = dataclasses.replace(ref.steps[0], replies={"reply": Reply(502, [b"502 x"])})
    got.steps[1] = dataclasses.replace(ref.steps[1], replies={"reply": Reply(504, [b"504 x"])})
    refused = {"setup": ref.steps[3].replies["setup"], "prelim": Reply(550, [b"550 x"])}
    got.steps[3] = dataclasses.replace(ref.steps[3], replies=refused, data=None)
    got.steps[4] = dataclasses.replace(ref.steps[4], replies={"reply": Reply(213, [b"213 31"])})
    got.tree = {**ref.tree, b"extra": ("file", 1, "x")}
    diffs = compare(ref, got)

    def size_is(n: bytes) -> Any:
        return lambda obs: dataclasses.replace(obs, detail=n)

    allow = {
        sc.id: {
            "1.reply": Allow("TYPE answered 501 here", code=501),
            "2.reply": Allow("no such difference", code=200),
            "3": Allow("says nothing about the final reply", code={"prelim": 550}),
            "3.data": Allow("no data", detail=ABSENT),
            "4.reply": Allow("another size", derive=size_is(b"29")),
            "tree": Allow("another path", tree={b"other": ("file", 1, "y")}),
        }
    }
    problems = check(sc, ref, got, diffs, allow)
    assert [p.split(":", 1)[0] for p in problems] == [
        "unexpected difference at 0.reply",
        "1.reply",
        "3.final",
        "4.reply",
        "tree",
        "stale allow-list entry check-self-test 2.reply",
    ], problems
    # ...and the entries that state ftpd's answers exactly leave nothing to report.
    exact = {
        sc.id: {
            "0.reply": Allow("NOOP answered 502 here", code=502),
            "1.reply": Allow("TYPE answered 504 here", code=504),
            "3": Allow("refused", code={"prelim": 550, "final": ABSENT}),
            "3.data": Allow("no data", detail=ABSENT),
            "4.reply": Allow("one more", derive=size_is(b"31")),
            "tree": Allow("one more path", tree={b"extra": ("file", 1, "x")}),
        }
    }
    assert check(sc, ref, got, diffs, exact) == []
