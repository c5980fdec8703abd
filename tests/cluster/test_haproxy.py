"""Two ftpd nodes on one S3 bucket behind HAProxy, all on loopback (docs/SCALING.md, "Behind a
load balancer"; the layout of config/haproxy.cfg).

    client 127.0.0.77/.78/.79 -> HAProxy VIP 127.0.0.10 (source 127.0.0.5, send-proxy-v2)
        control: leastconn over n1 127.0.0.11 and n2 127.0.0.12
        implicit FTPS: leastconn over the nodes' implicit_tls_port (header, then TLS)
        data:    127.0.0.10:65300-65309 -> n1, 127.0.0.10:65310-65319 -> n2 (the port names the node)
    n1, n2 -> moto S3 (one bucket, one home prefix)
    n1, n2 -> PostgreSQL (one users_db table: the account "user" both nodes log in)

Checked: upload through one node and download through the other, with PASV and EPSV; the real
client IP in both nodes' logs; the per-IP limit counts the real client; curl downloads over
implicit FTPS (PROT P data) through HAProxy and the node logs the real client; killing a node
mid-upload drops that session, leaves no object, and new sessions go to the other node.
The account lives in a real PostgreSQL database that both nodes share (``users_db``; the server
the tests start, see ``postgres`` in tests/conftest.py), created with ``ftpd user add``'s code.
HAProxy is the Debian package; missing, the test skips (fails under FTPD_REQUIRE_CLIENTS=1).
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

VIP, BALANCER, CLIENT, CLIENT2 = "127.0.0.10", "127.0.0.5", "127.0.0.77", "127.0.0.78"
CURL_CLIENT = "127.0.0.79"
NODES = {"n1": ("127.0.0.11", "65300-65309"), "n2": ("127.0.0.12", "65310-65319")}
BUCKET, PREFIX = "ftpd-cluster", "homes"
MOTO_LAUNCHER = Path(__file__).parent.parent / "s3" / "moto_launcher.py"
REQUIRE_ENV = "FTPD_REQUIRE_CLIENTS"
MiB = 1 << 20


def _haproxy() -> str:
    return _require("haproxy")


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    msg = f"{tool} is not installed (apt-get install -y {tool})"
    if os.environ.get(REQUIRE_ENV, "").strip().lower() not in ("", "0", "no", "false"):
        pytest.fail(f"{msg}; {REQUIRE_ENV} is set, so it is required", pytrace=False)
    pytest.skip(msg)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Node:
    name: str
    host: str
    port: int
    tls_port: int  # implicit FTPS
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    port: int  # the control port on the VIP
    ftps_port: int  # the implicit FTPS port on the VIP
    ca: Path  # the CA of the nodes' certificate (issued for the VIP)
    nodes: dict[str, Node]
    s3: object  # a boto3 client, to look at the bucket from outside

    def login(self, source: str = CLIENT) -> tuple[ftplib.FTP, Node]:
        """A session through the VIP, and the node it landed on (found by its real client port
        in the node logs, which is also the check that the logs show the real client)."""
        ftp = ftplib.FTP(source_address=(source, 0), timeout=20)
        ftp.connect(VIP, self.port)
        ftp.login("user", "12345")
        mark = rf"{re.escape(source)}:{ftp.sock.getsockname()[1]} user login ok"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if re.search(mark, node.log()):
                    return ftp, node
            time.sleep(0.05)
        raise AssertionError(f"no node logged {mark!r}")

    def objects(self) -> list[str]:
        resp = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)  # type: ignore[attr-defined]
        return [o["Key"] for o in resp.get("Contents") or ()]

    def uploads(self) -> list[str]:
        """Keys of multipart uploads started and neither completed nor aborted."""
        resp = self.s3.list_multipart_uploads(Bucket=BUCKET)  # type: ignore[attr-defined]
        return [u["Key"] for u in resp.get("Uploads") or ()]


def _wait_ready(log_path: Path, pattern: str, proc: subprocess.Popen[bytes], what: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        m = re.search(pattern, log_path.read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres: Any) -> Iterator[Cluster]:
    haproxy = _haproxy()
    import boto3
    import trustme
    from botocore.config import Config as BotoConfig

    from ftpd.auth.admin import NewUser, open_target
    from ftpd.auth.hashing import hash_password

    tmp = tmp_path_factory.mktemp("cluster")
    # One user table for both nodes. With storage = s3 the home is the key prefix PREFIX/user/,
    # so the row's home directory plays no part.
    users_db = postgres.new_database()
    open_target("", users_db).add(NewUser("user", hash_password("12345"), str(tmp), "elradfmwMT"))
    ca = trustme.CA()  # clients reach the nodes through the VIP: that is the certificate's name
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    ca.issue_cert(VIP).private_key_and_cert_chain_pem.write_to_path(str(tmp / "node.pem"))
    env = dict(os.environ)
    env.pop("FTPD_CONFIG", None)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
    )
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env)  # fmt: skip
        procs.append(p)
        return p

    try:
        moto_log = tmp / "moto.log"
        moto = spawn([sys.executable, str(MOTO_LAUNCHER), "127.0.0.1", "0"], moto_log)
        endpoint = _wait_ready(moto_log, r"Running on (http://127\.0\.0\.1:\d+)", moto, "moto")
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=BotoConfig(s3={"addressing_style": "path"}),
        )
        urllib.request.urlopen(
            urllib.request.Request(endpoint + "/moto-api/reset", method="POST"), timeout=10
        ).close()
        s3.create_bucket(Bucket=BUCKET)

        nodes: dict[str, Node] = {}
        for name, (host, pasv) in NODES.items():
            log_path = tmp / f"{name}.log"
            tls_port = _free_port(host)
            flags = dict(
                host=host, port=0, users_db=users_db, password="", root=str(tmp / name),
                tls="explicit", tls_cert=tmp / "node.pem", tls_key=tmp / "node.pem",
                implicit_tls_port=tls_port,
                storage="s3", s3_endpoint=endpoint, s3_bucket=BUCKET, s3_prefix=PREFIX,
                s3_region="us-east-1", pasv_ports=pasv, pasv_address=VIP,
                proxy_protocol="required", proxy_trusted=f"{BALANCER}/32", max_per_ip=2,
                login_fail_delay=0, log_level="info", data_timeout=20,
            )  # fmt: skip
            argv = [sys.executable, "-m", "ftpd"]
            for k, v in flags.items():
                argv += [f"--{k.replace('_', '-')}", str(v)]
            proc = spawn(argv, log_path)
            port = int(_wait_ready(log_path, r"^ftpd serving .* on \S+:(\d+)$", proc, name))
            assert "users database postgresql://ftpd:***@" in log_path.read_text()
            nodes[name] = Node(name, host, port, tls_port, proc, log_path)

        port = ftps_port = _free_port(VIP)
        while ftps_port == port:
            ftps_port = _free_port(VIP)
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(_haproxy_cfg(port, ftps_port, nodes))
        hp_log = tmp / "haproxy.log"
        hp = spawn([haproxy, "-db", "-f", str(cfg)], hp_log)
        deadline = time.monotonic() + 10
        while True:  # HAProxy is up once the VIP greets through it
            try:
                with socket.create_connection((VIP, port), timeout=2) as s:
                    if s.recv(64).startswith(b"220"):
                        break
            except OSError:
                pass
            if hp.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{hp_log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield Cluster(port, ftps_port, tmp / "ca.pem", nodes, s3)
    finally:
        for p in reversed(procs):
            _stop(p)


def _haproxy_cfg(port: int, ftps_port: int, nodes: dict[str, Node]) -> str:
    """config/haproxy.cfg with this test's addresses and short timers."""
    out = [
        "global",
        "    maxconn 500",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 2",
        "    option redispatch",
        f"    source {BALANCER}",
        "listen ftp_control",
        f"    bind {VIP}:{port}",
        "    balance leastconn",
    ]
    for n in nodes.values():
        out.append(f"    server {n.name} {n.host}:{n.port} send-proxy-v2 check inter 500ms fall 1")
    out += ["listen ftps_implicit", f"    bind {VIP}:{ftps_port}", "    balance leastconn"]
    for n in nodes.values():
        out.append(
            f"    server {n.name} {n.host}:{n.tls_port} send-proxy-v2 check inter 500ms fall 1"
        )
    for n in nodes.values():
        first, last = NODES[n.name][1].split("-")
        out += [
            f"listen ftp_data_{n.name}",
            f"    bind {VIP}:{first}-{last}",
            f"    server {n.name} {n.host} send-proxy-v2 check port {n.port} check-send-proxy"
            " inter 500ms fall 1",
        ]
    return "\n".join(out) + "\n"


def _other(ftp_node: Node, cluster: Cluster) -> str:
    return next(name for name in cluster.nodes if name != ftp_node.name)


def _epsv(ftp: ftplib.FTP) -> None:
    # ftplib sends EPSV instead of PASV for IPv6 control connections only; this makes it use
    # EPSV here (RFC 2428: the port only, the host is the control connection's: the VIP).
    ftp.af = socket.AF_INET6


def test_upload_on_one_node_download_on_the_other(cluster: Cluster) -> None:
    payload = os.urandom(3 * MiB + 123)
    up, up_node = cluster.login()
    up.storbinary("STOR shared.bin", io.BytesIO(payload))  # PASV
    reply = up.sendcmd("PASV")
    assert "(127,0,0,10," in reply  # the VIP is advertised, not the node's address
    # The port it opened is in this node's range, i.e. behind its own HAProxy listen.
    port = ftplib.parse227(reply)[1]
    first, last = (int(x) for x in NODES[up_node.name][1].split("-"))
    assert first <= port <= last
    up.sendcmd("ABOR")

    # leastconn: with the first session still open, the next one goes to the other node.
    down, down_node = cluster.login()
    assert down_node.name == _other(up_node, cluster)
    buf = io.BytesIO()
    down.retrbinary("RETR shared.bin", buf.write)  # PASV
    assert hashlib.sha256(buf.getvalue()).digest() == hashlib.sha256(payload).digest()
    _epsv(down)
    tail = io.BytesIO()
    down.retrbinary("RETR shared.bin", tail.write, rest=len(payload) - 1000)  # EPSV + REST
    assert tail.getvalue() == payload[-1000:]
    _epsv(up)
    up.storbinary("STOR via-epsv.bin", io.BytesIO(b"epsv upload"))
    assert down.size("via-epsv.bin") == len(b"epsv upload")
    assert sorted(down.nlst()) == ["shared.bin", "via-epsv.bin"]
    for ftp in (up, down):
        ftp.quit()
    # Both nodes saw the real client (never only the balancer) on control and data.
    for node in cluster.nodes.values():
        log = node.log()
        assert f"{CLIENT}:" in log and "result=ok" in log, log
        assert "refused data connection" not in log


def test_per_ip_limit_sees_the_real_client(cluster: Cluster) -> None:
    # max_per_ip = 2 on each node, leastconn spreads sessions: four sessions of one client fill
    # both nodes, the fifth is refused wherever it lands; another client is still let in.
    sessions = []
    for _ in range(4):
        ftp = ftplib.FTP(source_address=(CLIENT, 0), timeout=20)
        assert ftp.connect(VIP, cluster.port).startswith("220")
        sessions.append(ftp)
    refused = ftplib.FTP(source_address=(CLIENT, 0), timeout=20)
    with pytest.raises(ftplib.error_temp, match="421"):
        refused.connect(VIP, cluster.port)
    other, _ = cluster.login(CLIENT2)
    other.quit()
    for ftp in sessions:
        ftp.quit()


def test_implicit_ftps_through_haproxy(cluster: Cluster, tmp_path: Path) -> None:
    """curl's implicit FTPS (``ftps://``): HAProxy puts a PROXY v2 header before the client's
    ClientHello on the control connection and on the PROT P data connection; the node reads
    exactly the header, then TLS, and logs the real client."""
    curl = _require("curl")
    payload = os.urandom(MiB + 77)
    up, _ = cluster.login()
    up.storbinary("STOR tls.bin", io.BytesIO(payload))
    up.quit()
    out = tmp_path / "tls.bin"
    url = f"ftps://user:12345@{VIP}:{cluster.ftps_port}/tls.bin"
    argv = [curl, "-q", "-sS", "-v", "--max-time", "30", "--ssl-reqd", "--cacert", str(cluster.ca)]
    argv += ["--interface", CURL_CLIENT, "-o", str(out), url]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == payload
    assert "PROT P" in res.stderr  # curl protected the data connection
    mark = rf"{re.escape(CURL_CLIENT)}:\d+ user login ok"
    deadline = time.monotonic() + 5
    while not any(re.search(mark, n.log()) for n in cluster.nodes.values()):
        assert time.monotonic() < deadline, "no node logged the real curl client"
        time.sleep(0.05)
    for node in cluster.nodes.values():
        log = node.log()
        assert "refused data connection" not in log and "closing connection" not in log, log
        assert not re.search(rf"{re.escape(BALANCER)}:\d+ user login ok", log)


def test_node_killed_mid_upload(cluster: Cluster) -> None:
    keep, _ = cluster.login()  # a session on the other node (leastconn), for the record
    ftp, victim = cluster.login()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR doomed.bin")
    chunk = os.urandom(MiB)
    for _ in range(12):  # past the first 8 MiB part: a multipart upload is in progress
        conn.sendall(chunk)
    deadline = time.monotonic() + 10
    while not [u for u in cluster.uploads() if u.endswith("doomed.bin")]:
        assert time.monotonic() < deadline, "the node never started the multipart upload"
        time.sleep(0.05)
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(5)
    conn.settimeout(10)
    with pytest.raises(OSError):  # the data connection is gone ...
        for _ in range(64):
            conn.sendall(chunk)
    conn.close()
    ftp.sock.settimeout(10)
    with pytest.raises((EOFError, OSError, ftplib.Error)):  # ... and so is the session
        ftp.voidresp()
    ftp.close()
    assert not [k for k in cluster.objects() if k.endswith("doomed.bin")]  # no partial object

    survivor = cluster.nodes[_other(victim, cluster)]
    deadline = time.monotonic() + 10
    for _ in range(3):  # new sessions all reach the survivor (health check or redispatch)
        new, node = cluster.login()
        assert node is survivor
        new.voidcmd("TYPE I")
        assert new.size("shared.bin") == 3 * MiB + 123
        new.quit()
        assert time.monotonic() < deadline
    keep.close()


ROOT = Path(__file__).resolve().parent.parent.parent


def test_shipped_haproxy_cfg_and_compose_agree() -> None:
    """config/haproxy.cfg parses (haproxy -c), and each node's passive range, implicit FTPS port,
    advertised address and trusted proxy in config/docker-compose.cluster.yml match it; every
    ftpd key is valid."""
    import yaml

    from ftpd.config_load import load_config

    haproxy = _haproxy()
    cfg_path = ROOT / "config" / "haproxy.cfg"
    check = subprocess.run(
        [haproxy, "-c", "-f", str(cfg_path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    cfg = cfg_path.read_text()
    compose = yaml.safe_load((ROOT / "config" / "docker-compose.cluster.yml").read_text())
    services = compose["services"]
    balancer = services["haproxy"]["networks"]["ftp"]["ipv4_address"]
    published = services["haproxy"]["ports"]
    m = re.search(r"listen ftps_implicit\n\s+bind :(\d+)\n", cfg)
    assert m is not None and f"{m.group(1)}:{m.group(1)}" in published
    for name in ("ftpd1", "ftpd2"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        pasv = env["FTPD_PASV_PORTS"]
        assert re.search(rf"listen ftp_data_{name}\n\s+bind :{pasv}\n", cfg), (name, pasv)
        assert re.search(rf"server {name} {name}:2121 send-proxy-v2", cfg)
        first, last = (int(p) for p in pasv.split("-"))
        assert any(
            int(a) <= first and last <= int(b)
            for a, b in (p.split(":")[0].split("-") for p in published if "-" in p)
        )
        assert env["FTPD_PROXY_TRUSTED"] == f"{balancer}/32"
        assert env["FTPD_PROXY_PROTOCOL"] == "required"
        tls_port = env["FTPD_IMPLICIT_TLS_PORT"]
        assert re.search(rf"server {name} {name}:{tls_port} send-proxy-v2", cfg), (name, tls_port)
        mounts = [v.split(":")[1] for v in services[name]["volumes"]]
        for key in ("FTPD_TLS_CERT", "FTPD_TLS_KEY"):
            assert os.path.dirname(env[key]) in mounts, (name, key)
        env.update(FTPD_PASSWORD="x", FTPD_PASV_ADDRESS="ftp.example.com", FTPD_USER="ftp")
        config = load_config([], {k: v for k, v in env.items() if k.startswith("FTPD_")})
        assert config.pasv_ports == pasv and config.storage == "s3"
        assert config.implicit_tls_port == int(tls_port) and config.tls == "explicit"
