"""Operations against a real ``python -m ftpd`` process: environment aliases, the generated password,
JSON and text log lines, the xferlog file, the Prometheus endpoint, and graceful shutdown on SIGTERM
with transfers in progress.

Every server gets a free passive block (``support.server``), also those configured by environment.
"""

from __future__ import annotations

import ftplib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
from integ_helpers import TIMEOUT, ftp_connect, uniq, write_file
from support.client import Ctl
from support.server import BLOCK, BLOCKS, pasv_block, terminate
from support.waits import wait_log, wait_until

import ftpd
from ftpd.config import ConfigError
from ftpd.config_load import load_config, read_env
from ftpd.server.logs import JsonFormatter
from ftpd.server.xferlog import format_line

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"^ftpd serving .* on (\S+):(\d+)$")
CONNECT = re.compile(r"^connect with: ftp://([^:@/]+):([^@/]+)@")
PAYLOAD = bytes(range(256)) * 400 + b"tail\r\n"  # 102,406 bytes, every byte value


# ------------------------------------------------------------------ a server with its own env
class Proc:
    """``python -m ftpd`` with a chosen environment; stdout lines are collected."""

    def __init__(self, tmp: Path, env: dict[str, str], *flags: str) -> None:
        self.root = tmp / "home"
        self.root.mkdir(exist_ok=True)
        self.err_path = tmp / f"stderr-{time.monotonic_ns()}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("FTPD_", "FTP_", "PASV_"))}
        argv = [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--root", str(self.root), "--login-fail-delay", "0", *flags]
        self.pasv_lock = None
        if not any(k.startswith(("PASV_", "FTPD_PASV_PORTS")) for k in env):
            first, self.pasv_lock = BLOCKS.take()  # a free block, like every test server
            argv += ["--pasv-ports", f"{first}-{first + BLOCK - 1}"]
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, text=True, env={**base, **env}
            )
        self.stdout: list[str] = []
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                raise RuntimeError(f"ftpd exited {self.proc.returncode}: {self.stderr()}")
            self.stdout.append(line.rstrip("\n"))
            m = READY.match(line.strip())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            assert time.monotonic() < deadline, "ftpd did not start"
        self.stdout.append(self.proc.stdout.readline().rstrip("\n"))  # the "connect with" line

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        terminate(self.proc, timeout)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.stdout += self.proc.stdout.read().splitlines()
            self.proc.stdout.close()
        if self.pasv_lock is not None:
            self.pasv_lock.close()
            self.pasv_lock = None
        return self.proc.returncode


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    started: list[Proc] = []

    def start(env: dict[str, str], *flags: str) -> Proc:
        d = tmp_path / f"p{len(started)}"
        d.mkdir()
        p = Proc(d, env, *flags)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ environment aliases
def test_aliases_map_to_config_keys() -> None:
    env = {
        "FTP_USER": "bob",
        "FTP_PASS": "s3cret pass",
        "PASV_ADDRESS": "ftp.example.com",
        "PASV_MIN_PORT": "21000",
        "PASV_MAX_PORT": "21010",
    }
    assert read_env(env) == {
        "user": "bob",
        "password": "s3cret pass",
        "pasv_address": "ftp.example.com",
        "pasv_ports": "21000-21010",
    }
    cfg = load_config([], env)
    assert (cfg.user, cfg.password, cfg.pasv_ports) == ("bob", "s3cret pass", "21000-21010")


def test_ftpd_variables_and_flags_win_over_aliases() -> None:
    env = {
        "FTP_USER": "bob",
        "FTPD_USER": "alice",
        "PASV_MIN_PORT": "21000",
        "PASV_MAX_PORT": "21010",
        "FTPD_PASV_PORTS": "30000-30009",
        "PASV_ADDRESS": "192.0.2.1",
    }
    assert read_env(env) == {
        "user": "alice",
        "pasv_ports": "30000-30009",
        "pasv_address": "192.0.2.1",
    }
    cfg = load_config(["--pasv-address", "192.0.2.7", "--user", "carol"], env)
    assert (cfg.user, cfg.pasv_address) == ("carol", "192.0.2.7")
    # An alias that FTPD_<KEY> overrides is not even parsed: its mistakes cannot stop start-up.
    assert read_env({"PASV_MIN_PORT": "oops", "FTPD_PASV_PORTS": "30000-30009"}) == {
        "pasv_ports": "30000-30009"
    }


def test_empty_aliases_count_as_unset() -> None:
    # docker compose passes "${FTP_PASS:-}" through as an empty string.
    assert read_env({"FTP_USER": "", "FTP_PASS": "", "PASV_ADDRESS": ""}) == {}
    assert read_env({"PASV_MIN_PORT": "", "PASV_MAX_PORT": ""}) == {}


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PASV_MIN_PORT": "21000"}, "PASV_MIN_PORT is set without the other"),
        ({"PASV_MAX_PORT": "21010"}, "PASV_MAX_PORT is set without the other"),
        ({"PASV_MIN_PORT": "21010", "PASV_MAX_PORT": "21000"}, '"21010-21000"'),
        ({"PASV_MIN_PORT": "80", "PASV_MAX_PORT": "90"}, '"80-90"'),
        ({"PASV_MIN_PORT": "x", "PASV_MAX_PORT": "21000"}, '"x-21000"'),
    ],
)
def test_bad_passive_aliases_are_one_line_errors(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_env(env)
    msg = str(info.value)
    assert "\n" not in msg and "pasv_ports (PASV_MIN_PORT/PASV_MAX_PORT)" in msg and needle in msg


def test_bad_alias_values_name_the_alias() -> None:
    with pytest.raises(ConfigError, match=r"invalid value for pasv_address.*::1"):
        load_config([], {"PASV_ADDRESS": "::1"})  # PASV cannot carry IPv6 (RFC 959 4.1.2)
    with pytest.raises(ConfigError, match=r"invalid value for user"):
        load_config([], {"FTP_USER": "a\tb"})


@pytest.fixture
def free_ports() -> Iterator[range]:
    with pasv_block() as ports:
        yield ports


def test_server_configured_by_aliases_only(launch: Any, free_ports: range) -> None:
    """FTP_USER/FTP_PASS log in; PASV_ADDRESS given as a host name is resolved at start-up and
    advertised in 227; PASV_MIN_PORT/PASV_MAX_PORT bound the passive ports."""
    env = {
        "FTP_USER": "bob",
        "FTP_PASS": "pa ss",
        "PASV_ADDRESS": "localhost",
        "PASV_MIN_PORT": str(free_ports[0]),
        "PASV_MAX_PORT": str(free_ports[4]),
    }
    p = launch(env)
    c = Ctl(p.host, p.port).login("bob", "pa ss")
    try:
        for _ in range(3):
            code, text = c.cmd("PASV")
            assert code == 227, text
            m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
            assert m, text
            assert ".".join(m.group(1, 2, 3, 4)) == "127.0.0.1"
            assert free_ports[0] <= int(m.group(5)) * 256 + int(m.group(6)) <= free_ports[4]
        assert c.code("TYPE I") == 200
        d = c.passive()
        c.send("STOR a.bin")
        assert c.reply()[0] == 150
        d.sendall(PAYLOAD)
        d.close()
        assert c.reply()[0] == 226
    finally:
        c.close()
    assert (p.root / "a.bin").read_bytes() == PAYLOAD
    assert Ctl(p.host, p.port).cmd("USER user")[0] == 331  # the default name is gone...
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(p.host, p.port)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login("user", "pa ss")
    ftp.close()


def test_generated_password_printed_once(launch: Any) -> None:
    p = launch({})
    m = CONNECT.match(p.stdout[-1])
    assert m, p.stdout
    user, password = m.group(1), m.group(2)
    assert user == "user" and len(password) >= 12
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(p.host, p.port)
    ftp.login(user, password)
    ftp.quit()
    assert p.stop() == 0
    everything = "\n".join(p.stdout) + p.stderr()
    assert everything.count(password) == 1  # printed once, never logged


# ------------------------------------------------------------------ log lines
def _json_lines(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)  # every line is one JSON object
        assert isinstance(entry, dict), line
        for key in ("time", "level", "logger", "event", "message"):
            assert key in entry, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), line
        entries.append(entry)
    return entries


def test_json_log_lines(factory: Any) -> None:
    srv = factory(log_format="json", log_level="debug")
    name = uniq("json") + " spaced.bin"
    ftp = ftp_connect(srv)
    ftp.storbinary(f"STOR {name}", io.BytesIO(PAYLOAD))
    ftp.quit()
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_connect(srv, password="wrong")
    assert srv.stop() == 0
    entries = _json_lines(srv.log())
    events = {e["event"] for e in entries}
    assert {"connect", "login", "command", "transfer", "reply", "disconnect"} <= events

    (stor,) = [e for e in entries if e["event"] == "transfer" and e.get("kind") == "STOR"]
    assert stor["path"] == "/" + name and stor["bytes"] == len(PAYLOAD)
    assert stor["result"] == "ok" and stor["user"] == srv.user and stor["level"] == "info"
    assert isinstance(stor["sid"], int) and re.fullmatch(r"127\.0\.0\.1:\d+", stor["peer"])
    assert isinstance(stor["seconds"], float) and stor["logger"] == "ftpd.transfer"

    logins = [e for e in entries if e["event"] == "login"]
    assert sorted(e["result"] for e in logins) == ["failed", "ok"]
    ok = next(e for e in logins if e["result"] == "ok")
    assert ok["sid"] == stor["sid"] and ok["user"] == srv.user and ok["peer"] == stor["peer"]
    (bad,) = [e for e in entries if e["event"] == "reply" and e.get("code") == 530]
    assert bad["sid"] != stor["sid"] and "user" not in bad  # not logged in

    commands = [e["command"] for e in entries if e["event"] == "command"]
    assert f"STOR {name}" in commands
    # At debug level the replies below 400 are logged too (the errors are at any level).
    replies = [e["message"] for e in entries if e["logger"] == "ftpd.session"]
    assert any(m.endswith("-> 230 Login successful.") for m in replies), replies
    assert "PASS ****" in commands and not any("wrong" in c or srv.password in c for c in commands)


def test_text_log_lines(factory: Any) -> None:
    srv = factory(log_format="text")
    ftp = ftp_connect(srv)
    ftp.quit()
    assert srv.stop() == 0
    lines = srv.log().splitlines()
    assert lines and not any(line.startswith("{") for line in lines)
    assert all(
        re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ftpd", line)
        for line in lines
    ), lines
    assert any(re.search(r"ftpd \[\d+\] 127\.0\.0\.1:\d+ user login ok$", ln) for ln in lines)


def test_json_formatter_keeps_hostile_text_on_one_line() -> None:
    record = logging.LogRecord(
        "ftpd.session", logging.INFO, __file__, 1, "%s -> %d %s",
        ("[7] ::1:4000 we ird", 550, "x\r\n{\"forged\": 1}\u2028é"), None,
    )  # fmt: skip
    record.event = "reply"
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    entry = json.loads(line)
    assert (entry["sid"], entry["peer"], entry["user"]) == (7, "::1:4000", "we ird")
    assert entry["message"].endswith('x\r\n{"forged": 1}\u2028é') and entry["event"] == "reply"


# ------------------------------------------------------------------ xferlog
XFERLOG_RE = re.compile(
    r"(?P<time>(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" [ 123]\d \d\d:\d\d:\d\d \d{4}) (?P<secs>\d+) (?P<host>\S+) (?P<size>\d+) (?P<file>\S+)"
    r" (?P<type>[ab]) _ (?P<dir>[oi]) (?P<mode>[ar]) (?P<user>\S+) ftp 0 \* (?P<status>[ci])"
)


def test_xferlog_lines(factory: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "xferlog"
    srv = factory(xferlog_file=str(log_path))
    big = os.urandom(1 << 20) * 24  # 24 MiB: more than the loopback socket buffers hold
    write_file(srv.root, "big.bin", big)
    write_file(srv.root, "text.txt", b"one\ntwo\n")
    name = uniq("x") + " with\tspace.bin"

    ftp = ftp_connect(srv)
    ftp.storbinary(f"STOR {name}", io.BytesIO(PAYLOAD))
    got: list[bytes] = []
    ftp.retrlines("RETR text.txt", lambda s: got.append(s.encode()))  # TYPE A
    ftp.retrlines("LIST")  # a listing is not a file transfer: not logged
    ftp.quit()

    # An interrupted download: read a little, then ABOR (RFC 959 4.1.3): status "i".
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    c.cmd("TYPE I")
    d = c.passive()
    c.send("RETR big.bin")
    assert c.reply()[0] == 150
    assert d.recv(65536)
    c.send("ABOR")
    codes = {c.reply()[0], c.reply()[0]}
    assert 426 in codes, codes
    d.close()
    c.close()

    # The writer thread appends within moments; nothing waits for shutdown here.
    text = wait_until(lambda: len(log_path.read_text().splitlines()) >= 3 and log_path.read_text())
    entries = [XFERLOG_RE.fullmatch(line) for line in str(text).splitlines()]
    assert all(entries) and len(entries) == 3, text
    stor, retr, aborted = (m.groupdict() for m in entries if m)  # type: ignore[union-attr]

    assert stor["file"] == "/" + name.replace(" ", "_").replace("\t", "_")
    assert (stor["size"], stor["type"], stor["dir"], stor["status"]) == (
        str(len(PAYLOAD)), "b", "i", "c",
    )  # fmt: skip
    assert (stor["host"], stor["mode"], stor["user"]) == ("127.0.0.1", "r", srv.user)
    assert int(stor["secs"]) >= 1
    assert (retr["file"], retr["type"], retr["dir"], retr["status"]) == ("/text.txt", "a", "o", "c")
    assert (aborted["file"], aborted["dir"], aborted["status"]) == ("/big.bin", "o", "i")
    assert 0 < int(aborted["size"]) < len(big)
    stamp = time.strptime(stor["time"], "%a %b %d %H:%M:%S %Y")
    assert abs(time.mktime(stamp) - time.time()) < 120  # local time, like ctime(3)


def test_xferlog_flushed_on_shutdown(factory: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "xfer.log"
    srv = factory(xferlog_file=str(log_path))
    ftp = ftp_connect(srv)
    for i in range(20):
        ftp.storbinary(f"STOR burst{i}", io.BytesIO(b"x" * i))
    ftp.quit()
    assert srv.stop() == 0
    lines = log_path.read_text().splitlines()
    assert [line.split()[8] for line in lines] == [f"/burst{i}" for i in range(20)]
    assert [int(line.split()[7]) for line in lines] == list(range(20))


def test_xferlog_bad_path_is_a_start_up_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ftpd", "--port", "0", "--root", str(tmp_path / "r"),
         "--xferlog-file", str(tmp_path / "missing-dir" / "x.log")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("ftpd: error: invalid value for xferlog_file")
    )


def test_format_line_fields() -> None:
    line = format_line(
        end=0.0, seconds=0.2, host="::1", size=5, path="/a b\r\nc", ascii=False, upload=False,
        anonymous=True, user="anonymous", complete=False,
    )  # fmt: skip
    fields = line.split(" ")
    expected = "1 ::1 5 /a_b__c b _ o a anonymous ftp 0 * i"
    assert fields[-13:] == expected.split(" ")
    assert time.asctime(time.localtime(0.0)) == " ".join(line.split(" ")[: len(fields) - 13])


# ------------------------------------------------------------------ metrics
def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_after_transfers(factory: Any) -> None:
    pytest.importorskip("prometheus_client")  # a test dependency; the extra is optional
    port = free_port()
    srv = factory(metrics_port=port, pasv_count=10)
    up = os.urandom(300_000)
    write_file(srv.root, "down.bin", PAYLOAD)

    before = scrape(port)
    assert before[("ftpd_sessions_total", ())] == 0
    assert before[("ftpd_passive_ports_capacity", ())] == 10
    assert before[("ftpd_info", (("version", ftpd.__version__), ("worker", "0")))] == 1

    ftp = ftp_connect(srv)
    ftp.storbinary("STOR up.bin", io.BytesIO(up))
    buf = io.BytesIO()
    ftp.retrbinary("RETR down.bin", buf.write)
    assert buf.getvalue() == PAYLOAD
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.sendcmd("SIZE missing.bin")  # no PASV: a failed RETR would leave a passive port open
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_connect(srv, password="wrong")

    # A passive port bound and not yet connected; two control connections open.
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.cmd("PASV")[0] == 227
    m = scrape(port)
    assert m[("ftpd_passive_ports_in_use", ())] == 1
    assert m[("ftpd_sessions_active", ())] == 2
    raw.close()
    ftp.quit()

    m = wait_until(lambda: (s := scrape(port))[("ftpd_sessions_active", ())] == 0 and s)
    assert m, "sessions did not close"
    assert m[("ftpd_sessions_total", ())] == 3
    assert m[("ftpd_logins_total", (("result", "ok"),))] == 2
    assert m[("ftpd_logins_total", (("result", "failed"),))] == 1
    assert m[("ftpd_transfers_total", (("direction", "upload"), ("result", "ok")))] == 1
    assert m[("ftpd_transfers_total", (("direction", "download"), ("result", "ok")))] == 1
    assert m[("ftpd_transfer_bytes_total", (("direction", "upload"),))] == len(up)
    assert m[("ftpd_transfer_bytes_total", (("direction", "download"),))] == len(PAYLOAD)
    assert m[("ftpd_error_replies_total", (("code", "530"),))] == 1
    assert m[("ftpd_error_replies_total", (("code", "550"),))] == 1
    assert m[("ftpd_passive_ports_in_use", ())] == 0
    assert 0 <= m[("ftpd_event_loop_lag_seconds", ())] < 5
    assert m[("process_open_fds", ())] > 0  # prometheus-client's process collector
    # The IO model (ftpd.fs.iomode): the file just written is in the page cache, so its open
    # and its sendfile were answered on the loop; the missing file's stat fell back to a thread.
    ops = {k[1]: v for k, v in m.items() if k[0] == "ftpd_file_ops_total"}
    assert ops[(("op", "open_read"), ("route", "inline"))] == 1
    assert ops[(("op", "send"), ("route", "inline"))] >= 1
    assert ops[(("op", "stat"), ("route", "fallback"))] >= 1
    assert srv.stop() == 0


def test_metrics_io_inline_off_sends_every_file_call_to_a_thread(factory: Any) -> None:
    pytest.importorskip("prometheus_client")
    port = free_port()
    srv = factory(metrics_port=port, pasv_ports="65030-65039", io_inline=False)
    write_file(srv.root, "down.bin", PAYLOAD)
    ftp = ftp_connect(srv)
    buf = io.BytesIO()
    ftp.retrbinary("RETR down.bin", buf.write)
    assert buf.getvalue() == PAYLOAD
    assert ftp.size("down.bin") == len(PAYLOAD)
    ftp.quit()
    m = scrape(port)
    routes = {dict(k[1])["route"] for k in m if k[0] == "ftpd_file_ops_total"}
    assert routes == {"thread"}
    assert m[("ftpd_file_ops_total", (("op", "open_read"), ("route", "thread")))] == 1
    assert srv.stop() == 0


def _two_free_ports() -> int:
    """A port P such that P and P + 1 are both free now."""
    for _ in range(50):
        first = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise RuntimeError("no two adjacent free ports")


def test_metrics_per_worker_ports(factory: Any) -> None:
    pytest.importorskip("prometheus_client")
    port = _two_free_ports()
    srv = factory(metrics_port=port, workers=2, pasv_count=10)
    workers = {}
    for p in (port, port + 1):
        m = wait_until(lambda p=p: _try_scrape(p), 10)
        assert m, f"no metrics on port {p}"
        (info,) = [dict(labels) for (name, labels) in m if name == "ftpd_info"]
        workers[info["worker"]] = m[("ftpd_passive_ports_capacity", ())]
    assert workers == {"0": 10, "1": 10}  # the workers share the whole range (issue 23)
    assert srv.stop() == 0


def _try_scrape(port: int) -> Any:
    try:
        return scrape(port)
    except OSError:
        return None


async def test_event_loop_lag_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from ftpd.config import Config
    from ftpd.server import observe

    monkeypatch.setattr(observe, "LAG_INTERVAL", 0.05)
    obs = observe.Observer(Config(), server=None)
    task = asyncio.get_running_loop().create_task(obs._sample_lag())
    try:
        # The bounds come from the stall we inject, not from how fast this machine is: load can
        # only make a sample later, so "at least the stall" holds anywhere, and an idle loop is
        # never seen as late as a 0.5 s stall.
        stall = 0.5
        await asyncio.sleep(0.12)  # two samples of the idle loop
        idle = obs.loop_lag
        time.sleep(stall)  # block the loop: the pending 50 ms timer fires ~stall late
        await asyncio.sleep(0.01)
        assert obs.loop_lag >= stall - 0.05, obs.loop_lag
        assert idle < stall - 0.05 <= obs.loop_lag, (idle, obs.loop_lag)
    finally:
        task.cancel()


def test_metrics_without_prometheus_client_is_a_clear_start_up_error(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "prometheus_client"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO)])}
    run = subprocess.run(
        [sys.executable, "-m", "ftpd", "--port", "0", "--root", str(tmp_path / "r"),
         "--metrics-port", str(free_port())],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "ftpd: error: metrics_port is set but prometheus-client is not installed"
    )
    assert "ftpd[metrics]" in last and "ftpd serving" not in run.stdout


# ------------------------------------------------------------------ graceful shutdown
def _start_upload(srv: Any, name: str) -> tuple[Ctl, socket.socket]:
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert c.code("TYPE I") == 200
    d = c.passive()
    c.send(f"STOR {name}")
    assert c.reply()[0] == 150
    return c, d


def _refused(srv: Any) -> bool:
    try:
        socket.create_connection((srv.host, srv.port), 1).close()
    except OSError:
        return True
    return False


def test_sigterm_lets_a_running_transfer_finish(factory: Any) -> None:
    srv = factory(shutdown_grace=8)
    idle = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    busy, data = _start_upload(srv, "slow.bin")
    data.sendall(PAYLOAD[:1000])
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)

    assert idle.reply() == (421, "Server shutting down.")  # idle sessions: told at once
    assert idle.closed(5)
    assert time.monotonic() - t0 < 2
    assert wait_until(lambda: _refused(srv), 3), "still accepting after SIGTERM"
    # The transfer goes on: send the rest slowly, well inside the grace period.
    for i in range(1000, len(PAYLOAD), 20_000):
        data.sendall(PAYLOAD[i : i + 20_000])
        time.sleep(0.15)  # a slow client inside the grace period: the behaviour under test
    data.close()
    assert busy.reply()[0] == 226
    assert busy.reply() == (421, "Server shutting down.")
    assert busy.closed(5)
    assert srv.proc.wait(5) == 0
    assert time.monotonic() - t0 < 6  # it did not sit out the whole grace period
    assert (srv.root / "slow.bin").read_bytes() == PAYLOAD


def test_sigterm_aborts_transfers_after_the_grace_period(factory: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "xfer.log"
    srv = factory(shutdown_grace=1.5, xferlog_file=str(log_path))
    busy, data = _start_upload(srv, "stalled.bin")
    data.sendall(b"partial")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    busy.sock.settimeout(10)
    assert busy.reply()[0] == 426  # the transfer is aborted with 426 (RFC 959 4.2), then...
    elapsed = time.monotonic() - t0
    assert 1.3 < elapsed < 4, elapsed
    assert busy.reply() == (421, "Server shutting down.")  # ...the session is closed
    assert srv.proc.wait(5) == 0
    data.close()
    assert not (srv.root / "stalled.bin").exists()  # an aborted upload leaves nothing
    (line,) = log_path.read_text().splitlines()  # the aborted transfer is in the xferlog too
    assert XFERLOG_RE.fullmatch(line) and line.endswith(" i")


def test_sigterm_stops_a_stalled_transfer_within_the_grace_period(factory: Any) -> None:
    """Whatever the final reply, a transfer that does not finish cannot hold the process past the
    grace period, and the process still exits 0."""
    srv = factory(shutdown_grace=1.5)
    busy, data = _start_upload(srv, "stalled.bin")
    data.sendall(b"partial")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    elapsed = time.monotonic() - t0
    assert 1.3 < elapsed < 6, elapsed
    busy.sock.settimeout(5)
    assert busy.closed(5)
    data.close()
    assert not (srv.root / "stalled.bin").exists()


def test_second_signal_exits_at_once(factory: Any) -> None:
    srv = factory(shutdown_grace=60)
    busy, data = _start_upload(srv, "never.bin")
    srv.proc.send_signal(signal.SIGTERM)
    wait_log(srv, "shutting down")  # the first signal is being handled
    assert srv.proc.poll() is None  # waiting for the transfer (60 s of grace)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    code = srv.proc.wait(5)
    assert time.monotonic() - t0 < 2 and code != 0
    data.close()
    busy.close()


def test_sigterm_with_idle_sessions_only_exits_promptly(factory: Any) -> None:
    srv = factory(shutdown_grace=30)
    clients = [Ctl(srv.host, srv.port).login(srv.user, srv.password) for _ in range(3)]
    fresh = Ctl(srv.host, srv.port)  # connected, not logged in
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    for c in [*clients, fresh]:
        assert c.reply()[0] == 421
        assert c.closed(5)
    assert srv.proc.wait(5) == 0
    assert time.monotonic() - t0 < 3
