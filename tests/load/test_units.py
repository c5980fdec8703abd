"""Unit tests of the load tool's pieces: reply framing, PASV/EPSV, histogram, option parsers."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpd.load.client import ProtocolError, ReplyParser, parse_epsv, parse_pasv
from ftpd.load.options import (
    Options,
    Prepared,
    make_plans,
    parse_addresses,
    parse_duration,
    parse_size,
    parse_weights,
    split_evenly,
)
from ftpd.load.prepare import parse_257
from ftpd.load.stats import Histogram, Recorder, bucket_index, bucket_value

LOAD_DIR = Path(__file__).resolve().parents[2] / "ftpd" / "load"


# -- reply framing (RFC 959 §4.2) ----------------------------------------------------------


def test_single_line_replies_split_across_reads() -> None:
    p = ReplyParser()
    assert p.feed(b"220 rea") == []
    assert p.feed(b"dy\r\n331 pass") == [(220, "ready")]
    assert p.feed(b"word\r\n") == [(331, "password")]


def test_multiline_reply_with_digit_lines_inside() -> None:
    p = ReplyParser()
    data = b"211-Features:\r\n EPSV\r\n200 not the end: another code\r\n211-still inside\r\n211 End\r\n"
    assert p.feed(data) == [
        (211, "Features:\n EPSV\n200 not the end: another code\n211-still inside\nEnd")
    ]


def test_bare_lf_and_code_only_line() -> None:
    assert ReplyParser().feed(b"200\n226 done\n") == [(200, ""), (226, "done")]


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().feed(b"hello there\r\n")


def test_endless_line_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().feed(b"220 " + b"x" * 70_000)


@given(st.lists(st.tuples(st.integers(100, 599), st.text("abc -", max_size=20)), max_size=5))
def test_parser_any_chunking(replies: list[tuple[int, str]]) -> None:
    wire = b"".join(f"{c}-first\r\n{t}\r\n{c} last\r\n".encode() for c, t in replies)
    for cut in range(0, len(wire) + 1, 7):
        p = ReplyParser()
        got = p.feed(wire[:cut]) + p.feed(wire[cut:])
        assert got == [(c, f"first\n{t}\nlast") for c, t in replies]


def test_pasv_and_epsv_parsing() -> None:
    assert parse_pasv("Entering Passive Mode (10,0,0,1,239,40).") == 239 * 256 + 40
    assert parse_pasv("=127,0,0,1,4,1") == 1025  # no parentheses (RFC 1123 §4.1.2.6)
    assert parse_epsv("Entering Extended Passive Mode (|||61001|)") == 61001
    assert parse_epsv("ok (!!!2121!)") == 2121
    for bad in ("no numbers", "(1,2,3,4,5,300)"):
        with pytest.raises(ProtocolError):
            parse_pasv(bad)
    with pytest.raises(ProtocolError):
        parse_epsv("(|||0|)")


def test_parse_257() -> None:
    assert parse_257('"/home/u" is cwd') == "/home/u"
    assert parse_257('"/a ""quoted"" dir" created') == '/a "quoted" dir'


# -- histogram ----------------------------------------------------------------------------


def _exact(samples: list[int], pct: float) -> int:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


@given(st.lists(st.integers(0, 10**11), min_size=1, max_size=300))
def test_percentiles_within_bucket_error(samples: list[int]) -> None:
    h = Histogram()
    for v in samples:
        h.record(v)
    for pct in (50.0, 90.0, 99.0, 100.0):
        exact = _exact(samples, pct)
        assert abs(h.percentile(pct) - exact) <= exact / 256 + 1
    assert h.max == max(samples) and h.min == min(samples) and h.count == len(samples)
    assert h.total == sum(samples)


@given(
    st.lists(st.integers(0, 10**10), max_size=100), st.lists(st.integers(0, 10**10), max_size=100)
)
def test_merge_is_exact(a: list[int], b: list[int]) -> None:
    ha, hb, hall = Histogram(), Histogram(), Histogram()
    for v in a:
        ha.record(v)
        hall.record(v)
    for v in b:
        hb.record(v)
        hall.record(v)
    ha.merge(hb)
    assert ha == hall


def test_buckets_are_monotonic_and_contain_their_values() -> None:
    prev = -1
    for v in list(range(0, 5000)) + [10**k + j for k in range(4, 13) for j in (0, 1, 999)]:
        idx = bucket_index(v)
        assert idx >= prev
        prev = idx
        assert abs(bucket_value(idx) - v) <= v / 256 + 1


def test_recorder_wire_round_trip_and_merge() -> None:
    r = Recorder()
    r.ok("retr", 1_000_000, nbytes=4096)
    r.ok("retr", 3_000_000, nbytes=4096)
    r.error("retr", "550")
    r2 = Recorder.from_wire(r.to_wire())
    r2.merge(r)
    assert r2.counts == {"retr": 4}
    assert r2.errors == {"retr 550": 2}
    assert r2.bytes == {"retr": 16384}
    summary = r2.latency["retr"].summary_ms()
    assert summary["count"] == 4 and summary["max"] == 3.0 and summary["mean"] == 2.0


# -- option parsers and plans -----------------------------------------------------------------


def test_parsers() -> None:
    assert parse_size("4K") == 4096 and parse_size("1G") == 1 << 30 and parse_size("10") == 10
    assert parse_size("1.5MiB") == 3 << 19
    assert parse_duration("500ms") == 0.5 and parse_duration("2m") == 120.0
    assert parse_addresses("127.0.0.1-127.0.0.3") == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert parse_addresses("127.0.0.7-8,::1") == ["127.0.0.7", "127.0.0.8", "::1"]
    assert parse_weights("retr=3", ("retr", "stor")) == {"retr": 3.0, "stor": 0.0}
    for bad in ("x", "-1K"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(ValueError):
        parse_addresses("127.0.0.9-127.0.0.1")
    with pytest.raises(ValueError):
        parse_weights("retr=0,stor=0", ("retr", "stor"))
    with pytest.raises(ValueError):
        parse_weights("dele=1", ("retr", "stor"))


def test_plans_split_everything() -> None:
    assert split_evenly(10, 3) == [4, 3, 3]
    opts = Options(scenario="hold", sessions=10, procs=3, connect_concurrency=24, noop_sample=5)
    opts.source_addresses = parse_addresses("127.0.0.1-127.0.0.8")
    plans = make_plans(opts, Prepared(), seed=1)
    assert [p.sessions for p in plans] == [4, 3, 3]
    assert [p.first_session for p in plans] == [0, 4, 7]
    assert sum(p.connect_concurrency for p in plans) == 24
    assert sum(p.noop_sample for p in plans) == 5
    assert all(p.count == -1 for p in plans)
    assert all(p.sources == opts.source_addresses for p in plans)
    # More processes than sessions: never an empty worker. A count smaller than the number of
    # workers leaves some with nothing to do, not with "no limit".
    opts = Options(scenario="logins", sessions=2, procs=4, count=1)
    plans = make_plans(opts, Prepared(), seed=1)
    assert len(plans) == 2 and sorted(p.count for p in plans) == [0, 1]


def test_public_options_hide_password() -> None:
    assert "password" not in Options(scenario="hold", password="secret").public()


# -- the tool stands alone -------------------------------------------------------------------

SERVER_SIDE = ("ftpd.proto", "ftpd.server", "ftpd.fs", "ftpd.auth", "ftpd.config", "ftpd.cli")


def test_load_package_imports_nothing_from_the_server() -> None:
    for path in LOAD_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(SERVER_SIDE), f"{path.name} imports {name}"
    code = (
        "import sys, ftpd.load.cli, ftpd.load.runner, ftpd.load.report, ftpd.load.prepare;"
        "print(','.join(m for m in sys.modules if m.startswith(('ftpd.proto','ftpd.server','ftpd.fs','ftpd.auth'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- open-model schedule and error hints -------------------------------------------------------


def test_constant_arrivals_do_not_drift() -> None:
    import random

    from ftpd.load.schedule import Arrivals

    a = Arrivals(3.0, False, random.Random(1), start_ns=1000)
    due = []
    for _ in range(300_001):
        due.append(a.due)
        a.advance()
    assert due[:4] == [1000, 1000 + 333_333_333, 1000 + 666_666_666, 1000 + 1_000_000_000]
    # Computed from the start, not summed: 300,000 gaps later still exactly 100,000 s on.
    assert due[-1] == 1000 + 100_000 * 10**9


def test_poisson_arrivals_have_the_rate_as_mean() -> None:
    import random

    from ftpd.load.schedule import Arrivals

    a = Arrivals(200.0, True, random.Random(5), start_ns=0)
    gaps = []
    prev = 0
    for _ in range(20_000):
        gaps.append(a.due - prev)
        prev = a.due
        a.advance()
    mean = sum(gaps) / len(gaps) / 1e9
    assert abs(mean - 1 / 200) < 0.05 / 200
    assert min(gaps) < 0.1e9 / 200 < 3e9 / 200 < max(gaps)  # exponential: short and long gaps


def test_hints_match_the_common_errors() -> None:
    from ftpd.load.hints import explain, hint_for

    per_ip = hint_for("establish 421", "421 Too many connections from your internet address.", "")
    assert per_ip is not None and "--source-addresses" in per_ip.fix
    total = hint_for("establish 421", "421 Too many connected users, please try later.", "")
    assert total is not None and "max_sessions" in total.cause
    # pyftpdlib's wording of both limits.
    pyftpd_ip = hint_for("establish 421", "421 Too many connections from the same IP address.", "")
    assert pyftpd_ip is not None and "per client address" in pyftpd_ip.cause
    refused = hint_for("login ConnectionRefusedError", "", "127.0.0.1:2121")
    assert refused is not None and "127.0.0.1:2121" in refused.cause
    assert hint_for("retr ShortTransfer", "received 1 bytes", "") is None
    lines = explain({"login 530": 3}, {"login 530": "530 Login incorrect."}, "h:1")
    assert lines[0] == "  login 530: 3  (530 Login incorrect.)" and "password" in lines[2]
