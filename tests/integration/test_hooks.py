"""Hooks (issue 19 part 3): real commands run by a real server, and a real webhook receiver.

The hook command is a small Python script that writes its ``FTPD_*`` environment (plus its pid)
to a JSON file per run; the webhook receiver is an ``http.server`` on 127.0.0.1 recording the
bodies it gets. The client's replies must never depend on what a hook does.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import ftp_connect
from support.waits import wait_until

from ftpd.config import Config
from ftpd.server.hooks import check_hooks

RECORDER = r"""
import json, os, sys, time, uuid
out = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else ""
env = {k: v for k, v in os.environ.items() if k.startswith("FTPD_")}
env["pid"] = os.getpid()
env["start"] = time.time()
if mode == "sleep":
    time.sleep(0.3)
if mode == "hang":
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    env["child"] = child.pid
if mode == "fail":
    sys.stderr.write("scanner: virus found\n")
env["end"] = time.time()
name = os.path.join(out, f"{env.get('FTPD_EVENT', 'x')}-{uuid.uuid4().hex}.json")
with open(name + ".tmp", "w") as fh:
    json.dump(env, fh)
os.rename(name + ".tmp", name)
if mode == "hang":
    time.sleep(60)
if mode == "fail":
    sys.exit(3)
"""


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[str, Path]:
    """(command prefix, output directory): both with a space, to show no shell splits them."""
    out = tmp_path / "hook out"
    out.mkdir()
    script = tmp_path / "record env.py"
    script.write_text(RECORDER)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(out))}", out


def runs(out: Path, event: str = "") -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{event}*.json"))]


def test_hooks_get_the_event_in_their_environment(
    factory: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd, out = recorder
    monkeypatch.setenv("FTPD_SECRET_FOR_TEST", "not for hooks")  # the server's own FTPD_* stay
    srv = factory(on_upload=cmd, on_download=cmd, on_delete=cmd, on_rename=cmd, on_login=cmd)
    ftp = ftp_connect(srv)
    assert wait_until(lambda: runs(out, "login"))
    name = "a; touch pwned $(id).txt"  # shell text in a name: only ever an environment value
    data = os.urandom(12345)
    assert ftp.storbinary(f"STOR {name}", io.BytesIO(data)).startswith("226")
    (up,) = wait_until(lambda: runs(out, "upload"))
    assert up["FTPD_EVENT"] == "upload"
    assert up["FTPD_USER"] == srv.user
    assert up["FTPD_PATH"] == f"/{name}"
    assert Path(up["FTPD_FILE"]) == (srv.root / name).resolve()
    assert Path(up["FTPD_FILE"]).read_bytes() == data  # in place when the hook runs
    assert up["FTPD_SIZE"] == "12345"
    assert up["FTPD_REMOTE_IP"] == "127.0.0.1"
    assert up["FTPD_OUTCOME"] == "ok" and int(up["FTPD_SESSION_ID"]) >= 1
    assert "FTPD_SECRET_FOR_TEST" not in up and "FTPD_PASSWORD" not in up
    assert not list(srv.root.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))

    ftp.retrbinary(f"RETR {name}", lambda b: None)
    (down,) = wait_until(lambda: runs(out, "download"))
    assert (down["FTPD_PATH"], down["FTPD_SIZE"]) == (f"/{name}", "12345")
    ftp.rename(name, "moved.bin")
    (ren,) = wait_until(lambda: runs(out, "rename"))
    assert (ren["FTPD_PATH"], ren["FTPD_TARGET"]) == (f"/{name}", "/moved.bin")
    assert Path(ren["FTPD_TARGET_FILE"]) == (srv.root / "moved.bin").resolve()
    ftp.delete("moved.bin")
    (dele,) = wait_until(lambda: runs(out, "delete"))
    assert dele["FTPD_PATH"] == "/moved.bin"
    (login,) = runs(out, "login")
    assert login["FTPD_USER"] == srv.user and login["FTPD_PATH"] == ""
    ftp.quit()


def test_failing_and_hanging_hooks_never_touch_the_reply(factory: Any, recorder: Any) -> None:
    pytest.importorskip("prometheus_client")
    cmd, out = recorder
    port = _free_port()
    srv = factory(
        on_upload=f"{cmd} fail", on_download=f"{cmd} hang", hook_timeout=0.5, metrics_port=port
    )
    ftp = ftp_connect(srv)
    t0 = time.monotonic()
    assert ftp.storbinary("STOR f.bin", io.BytesIO(b"x" * 1000)).startswith("226")
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    ftp.retrbinary("RETR f.bin", lambda b: None)
    assert ftp.voidcmd("NOOP").startswith("200")
    assert time.monotonic() - t0 < 0.5  # no reply waited for a hook
    assert wait_until(lambda: "virus found" in srv.log())
    assert "hook upload:" in srv.log() and "exit status 3" in srv.log()
    (hung,) = wait_until(lambda: runs(out, "download"))
    assert wait_until(lambda: "killed after 0.5 s" in srv.log(), timeout=10)
    # The whole process group went: the command and the child it started.
    for pid in (hung["pid"], hung["child"]):
        assert wait_until(lambda pid=pid: not _alive(pid), timeout=5)
    metrics = _scrape(port)
    assert metrics['ftpd_hook_runs_total{event="upload",result="failed"}'] == 1
    assert metrics['ftpd_hook_runs_total{event="download",result="timeout"}'] == 1
    ftp.quit()


def test_hook_concurrency_is_bounded(factory: Any, recorder: Any) -> None:
    cmd, out = recorder
    srv = factory(on_upload=f"{cmd} sleep", hook_concurrency=1)
    ftp = ftp_connect(srv)
    for i in range(4):
        ftp.storbinary(f"STOR c{i}", io.BytesIO(b"c"))
    done = wait_until(lambda: (r := runs(out, "upload")) and len(r) == 4 and r, timeout=15)
    assert done, runs(out, "upload")
    spans = sorted((r["start"], r["end"]) for r in done)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.01, spans  # one at a time (the interpreter start is outside)
    ftp.quit()


def test_a_bad_hook_command_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_upload.*no executable"):
        check_hooks(Config(on_upload="/no/such/scanner --x"))
    with pytest.raises(ValueError, match="on_delete.*No closing quotation"):
        check_hooks(Config(on_delete="echo 'unclosed"))
    with pytest.raises(ValueError, match="webhook_url"):
        check_hooks(Config(webhook_url="ftp://x"))
    with pytest.raises(ValueError, match='webhook_events.*unknown event "uplod"'):
        check_hooks(Config(webhook_url="http://127.0.0.1:1/", webhook_events="uplod"))


# --- the webhook ------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 recording the JSON it is POSTed."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.gate = threading.Event()
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.gate.wait(20)
                outer.attempts += 1
                if outer.attempts <= outer.fail_first:
                    self.send_response(503)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def test_webhook_posts_events_with_retries(factory: Any, receiver: Receiver) -> None:
    srv = factory(webhook_url=receiver.url)
    ftp = ftp_connect(srv)
    ftp.storbinary("STOR w.bin", io.BytesIO(b"w" * 777))
    ftp.delete("w.bin")
    ftp.quit()
    # Two 503s, retried after 0.5 and 1 s: then login, upload, delete in order.
    assert wait_until(lambda: len(receiver.bodies) >= 3, timeout=15)
    kinds = [b["event"] for b in receiver.bodies]
    assert kinds == ["login", "upload", "delete"]
    up = receiver.bodies[1]
    assert (up["user"], up["path"], up["size"], up["remote_ip"]) == (
        srv.user,
        "/w.bin",
        777,
        "127.0.0.1",
    )
    assert Path(up["file"]) == (srv.root / "w.bin").resolve()
    assert receiver.attempts == 5
    assert srv.log().count("retry in") == 2


def test_webhook_queue_drops_the_oldest_and_says_so(factory: Any) -> None:
    r = Receiver()
    r.gate.clear()  # the receiver stalls: the first POST waits, the rest queue up
    try:
        srv = factory(webhook_url=r.url, webhook_queue=2, webhook_events="upload")
        ftp = ftp_connect(srv)
        for i in range(6):
            ftp.storbinary(f"STOR q{i}", io.BytesIO(b"q"))
        assert wait_until(lambda: srv.log().count("dropped the oldest") == 3)
        r.gate.set()
        assert wait_until(lambda: len(r.bodies) == 3, timeout=10)
        # q0 was in flight; q1-q3 dropped; the newest two delivered.
        assert [b["path"] for b in r.bodies] == ["/q0", "/q4", "/q5"]
        ftp.quit()
    finally:
        r.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _scrape(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
