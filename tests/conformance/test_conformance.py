"""Differential conformance: the same scripted sessions against pyftpdlib and ftpd.

For each scenario both servers get the same fresh tree; the session is played against each, and
every difference in reply codes (and the pinned parts of reply texts), data and final tree must
be listed in ``allowlist.py`` with its reason. An allow-listed step asserts ftpd's own reply, and
an entry that no longer matches a difference fails too, so the list stays short and true.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from .allowlist import ALLOW, EQUIVALENT_CODES, Allow
from .compare import Diff, compare, norm_data, norm_reply, normalized_tree
from .conftest import Pair
from .harness import Cmd, Recording, Scenario, Xfer, populate, run_scenario
from .scenarios_files import SCENARIOS as FILE_SCENARIOS
from .scenarios_session import SCENARIOS as SESSION_SCENARIOS

pytestmark = [
    pytest.mark.conformance,
    # pyftpdlib imports asyncore/asynchat, deprecated since Python 3.10.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

SCENARIOS: list[Scenario] = SESSION_SCENARIOS + FILE_SCENARIOS
BY_ID = {sc.id: sc for sc in SCENARIOS}


def play(pair: Pair, sc: Scenario) -> tuple[Recording, Recording]:
    populate(pair.ref.home, sc)
    populate(pair.ftpd.root, sc)
    ref = run_scenario(pair.ref.host, pair.ref.port, pair.ref.home, sc, pair.ref.password)
    got = run_scenario(pair.ftpd.host, pair.ftpd.port, pair.ftpd.root, sc, pair.ftpd.password)
    return ref, got


def _entry_for(sc_id: str, where: str) -> tuple[str, Allow] | None:
    entries = ALLOW.get(sc_id, {})
    if where in entries:
        return where, entries[where]
    step = where.split(".", 1)[0]
    if step in entries:
        return step, entries[step]
    return None


def _ftpd_obs(got: Recording, where: str) -> Any:
    step, _, role = where.partition(".")
    rec = got.preamble[int(step[3:])] if step.startswith("pre") else got.steps[int(step)]
    if role == "data":
        return norm_data(rec.verb, rec.data)
    r = rec.replies.get(role)
    return None if r is None else norm_reply(rec.verb, r)


def check(sc: Scenario, ref: Recording, got: Recording, diffs: list[Diff]) -> list[str]:
    """Problems: differences not allow-listed, allow-listed steps where ftpd does not do what the
    entry says, and entries that match no difference."""
    problems: list[str] = []
    used: set[str] = set()
    for d in diffs:
        found = _entry_for(sc.id, d.where)
        if found is None:
            problems.append(f"unexpected difference at {d}")
            continue
        key, allow = found
        used.add(key)
        if d.where == "tree":
            expected = dict(normalized_tree(ref))
            for path, value in (allow.tree or {}).items():
                if value is None:
                    expected.pop(path, None)
                else:
                    expected[path] = value
            actual = normalized_tree(got)
            if expected != actual:
                problems.append(
                    f"tree: allow-listed difference, but ftpd's tree is not the expected one: {d}"
                )
            continue
        obs = _ftpd_obs(got, d.where)
        role = d.where.partition(".")[2]
        want = allow.code.get(role) if isinstance(allow.code, dict) else allow.code
        if role != "data" and want is not None and (obs is None or obs.code != want):
            problems.append(f"{d.where}: allow-listed ftpd {want}, got {obs} ({d})")
        if allow.detail is not None and "." in key and obs is not None:
            got_detail = obs if role == "data" else obs.detail
            if got_detail != allow.detail:
                problems.append(
                    f"{d.where}: allow-listed detail {allow.detail!r}, got {got_detail!r}"
                )
    for key in ALLOW.get(sc.id, {}):
        if key not in used:
            problems.append(f"stale allow-list entry {sc.id} {key}: no such difference any more")
    return problems


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.id)
def test_scenario(pair: Pair, sc: Scenario) -> None:
    ref, got = play(pair, sc)
    diffs = compare(ref, got)
    problems = check(sc, ref, got, diffs)
    assert not problems, f"{sc.id}:\n  " + "\n  ".join(problems) + f"\nftpd log tail:\n{_log(pair)}"


def _log(pair: Pair) -> str:
    return "\n".join(pair.ftpd.log().splitlines()[-30:])


# ---------------------------------------------------------------------------------- meta tests
def test_enough_scenarios_with_unique_ids() -> None:
    assert len(SCENARIOS) >= 80
    assert len(BY_ID) == len(SCENARIOS), "duplicate scenario ids"


def test_allowlist_entries_are_well_formed() -> None:
    for sc_id, entries in ALLOW.items():
        assert sc_id in BY_ID, f"allow-list names unknown scenario {sc_id}"
        sc = BY_ID[sc_id]
        # Every entry has a reason; "As above" may point to a full one in the same scenario.
        assert max(len(a.reason) for a in entries.values()) >= 40, f"{sc_id}: give the reason"
        for key, allow in entries.items():
            assert allow.reason.strip(), f"{sc_id} {key}: every entry needs a reason"
            if key == "tree":
                assert allow.tree, f"{sc_id}: a tree entry lists the paths that differ"
                continue
            step = key.split(".", 1)[0]
            index = int(step[3:]) if step.startswith("pre") else int(step)
            assert 0 <= index < len(sc.steps), f"{sc_id} {key}: no such step"
            assert allow.code is not None or allow.detail is not None, (
                f"{sc_id} {key}: expects nothing"
            )
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
    runs = []
    for n in range(2):
        one = dataclasses.replace(sc, id=f"self-check-{n}")
        populate(pair.ref.home, one)
        runs.append(
            run_scenario(pair.ref.host, pair.ref.port, pair.ref.home, one, pair.ref.password)
        )
    # The directory names differ (self-check-0/1) only inside 257 replies; MKD is step 4.
    runs[1].steps[4] = runs[0].steps[4]
    assert compare(runs[0], runs[1]) == []
    # ...and a changed reply, changed data and a changed tree are each reported.
    runs[1].steps[0].replies["reply"].code = 504
    runs[1].steps[2].data = b"other"
    runs[1].tree[b"extra"] = ("file", 1, "x")
    where = {d.where for d in compare(runs[0], runs[1])}
    assert where == {"0.reply", "2.data", "tree"}
