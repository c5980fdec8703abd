"""The first run: the target as the URL ftpd prints, defaults like ftpd's, errors that say why.

Also the fixes of issue 21: memory per session never printed negative, the last timeline
interval divided by its own length, op names whole at 80 columns; ``--procs auto`` and the fd
budget's message.
"""

from __future__ import annotations

import io
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from loadtool import assert_sane, run_load, url_of

from ftpd.load import limits
from ftpd.load.cli import build_parser, options_from_args
from ftpd.load.display import print_summary
from ftpd.load.options import Options
from ftpd.load.target import Target, parse_url


def _opts(*argv: str) -> Options:
    return options_from_args(build_parser().parse_args(list(argv)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_urls_and_defaults() -> None:
    assert parse_url("ftp://user:p%40ss@127.0.0.1:2121/") == Target(
        "127.0.0.1", 2121, "user", "p@ss", False, False
    )
    assert parse_url("ftpes://h/") == Target("h", 21, None, None, True, False)
    assert parse_url("ftps://u:w@[::1]/") == Target("::1", 990, "u", "w", False, True)
    for bad in ("http://h/", "ftp://:21/", "ftp://h:99999/"):
        with pytest.raises(ValueError):
            parse_url(bad)
    # No URL: a default ftpd (127.0.0.1:2121, user "user"); its password must be given.
    o = _opts("logins", "--password", "x")
    assert (o.host, o.port, o.user, o.tls) == ("127.0.0.1", 2121, "user", False)
    with pytest.raises(ValueError, match="ftp://user:PASSWORD@127.0.0.1:2121/"):
        _opts("logins")
    # Flags override the URL; ftps:// means TLS from the first byte.
    o = _opts("mixed", "5", "ftps://u:w@10.0.0.1/", "--port", "9990", "--rate", "5")
    assert (o.host, o.port, o.user, o.password) == ("10.0.0.1", 9990, "u", "w")
    assert o.tls and o.implicit_tls and o.rate == 5
    with pytest.raises(ValueError, match="--think"):
        _opts("mixed", "5", "ftp://u:w@h/", "--rate", "5", "--think", "1")
    with pytest.raises(SystemExit):  # hold and retr/stor have no --rate
        _opts("hold", "5", "ftp://u:w@h/", "--rate", "5")


def test_url_target_runs(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(["logins", url_of(ftpd_server), "-c", "2", "--count", "4"], tmp_path)
    assert rc == 0, log
    assert r["counts"] == {"login": 4}
    assert r["target"] == f"ftp://user@127.0.0.1:{ftpd_server.port}/"
    assert ftpd_server.password not in log


def test_implicit_tls_url(ftpd_factory: Any, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = _free_port()
    server = ftpd_factory(tls_cert=str(cert_file), tls_key=str(key_file), implicit_tls_port=port)
    rc, r, log = run_load(
        ["small", f"ftps://user:{server.password}@127.0.0.1:{port}/", "-c", "2"]
        + ["--cafile", str(ca_file), "--count", "6", "--mix", "retr=1,stor=1"],
        tmp_path,
    )
    assert rc == 0, log
    # A random mix of 6 may hold no RETR (or no STOR) at all: its count is then absent.
    assert r["errors"] == {} and r["counts"].get("retr", 0) + r["counts"].get("stor", 0) == 6
    assert r["target"].startswith("ftps://")


def test_421_per_address_shows_reply_and_fix(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(max_per_ip=2)
    rc, r, log = run_load(["hold", "4", url_of(server), "--duration", "0.5"], tmp_path)
    assert rc == 1, log
    assert r["errors"] == {"establish 421": 2}
    assert "421 Too many connections from your internet address" in log
    assert "--source-addresses 127.0.0.1-127.0.0.8" in log and "max_per_ip" in log


def test_refused_connection_names_the_address(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there any more
    url = f"ftp://user:x@127.0.0.1:{port}/"
    rc, r, log = run_load(["logins", url, "-c", "1", "--count", "2"], tmp_path)
    assert rc == 1, log
    assert f"nothing listens at 127.0.0.1:{port}" in log
    # A scenario that prepares the server fails at once, with the same explanation.
    rc, r, log = run_load(["small", url, "--count", "2"], tmp_path)
    assert rc == 2 and r == {}, log
    assert f"preparing the server at 127.0.0.1:{port} failed" in log
    assert f"nothing listens at 127.0.0.1:{port}" in log and "2121" in log


def test_mixed_memory_and_last_interval(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        ["mixed", "200", url_of(ftpd_server), "--think", "1", "--duration", "2.6", "--procs", "4"]
        + ["--settle", "0.3", "--server-pid", str(ftpd_server.pid)],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "mixed")
    # Read before the workers started, the baseline was higher than with them: PSS shares the
    # Python libraries among everyone who maps them. Now read once they run.
    assert r["server"]["per_session_kib"] >= 0
    assert "server memory per session: -" not in log
    # The last interval (partial, and followed by 200 final NOOPs) is divided by its own span.
    run = [p["ops_per_s"] for p in r["timeline"] if p["phase"] == "run"]
    last = r["timeline"][-1]["ops_per_s"]
    assert last <= 2 * statistics.median(run), r["timeline"]


def test_op_names_whole_at_80_columns() -> None:
    lat = {"p50": 1.5, "p90": 12.25, "p99": 123.456, "max": 12345.678, "mean": 99.5, "count": 9}
    ops = ("establish", "final_noop", "list", "retr", "stor")
    result = {
        "scenario": "mixed",
        "params": {"host": "127.0.0.1", "port": 2121},
        "started": "a",
        "ended": "b",
        "run_s": 1.0,
        "counts": dict.fromkeys(ops, 123456),
        "errors": {},
        "errors_total": 0,
        "latency": dict.fromkeys(ops, lat),
        "rates": {f"{op}_per_s": 12345.6 for op in ops},
        "sessions": {"established": 1, "target": 1, "establish_s": None, "alive_at_end": 1},
        "interrupted": False,
        "watchdog_fired": False,
        "server": None,
    }
    out = io.StringIO()
    print_summary(result, use_rich=True, stream=out)  # rich: 80 columns when not a terminal
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for word in (*ops, "12346", "123.5", "123456"):
        assert word in text


def test_procs_auto_and_fd_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_per_process_limit", lambda: 1000)
    monkeypatch.setattr(limits, "cores", lambda: 2)
    o = Options(scenario="hold", sessions=100, procs=limits.PROCS_AUTO)
    limits.resolve_procs(o)
    assert o.procs == 2  # one per core
    o = Options(scenario="mixed", sessions=5000, procs=limits.PROCS_AUTO)
    limits.resolve_procs(o)
    assert o.procs == 10  # 10,000 fds in processes of 1,000
    limits.check_fd_budget(o)
    o.procs = 4
    with pytest.raises(ValueError, match="use --procs 10 or more"):
        limits.check_fd_budget(o)


def test_fd_budget_message_from_the_command_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftpd.load", "hold", "900000", "ftp://u:p@127.0.0.1:9/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "fds per process" in proc.stderr and "--procs auto" in proc.stderr
