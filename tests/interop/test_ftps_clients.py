"""Real FTPS clients against ftpd: curl, lftp, rclone and aioftp's client, explicit (AUTH TLS) and
implicit (TLS from the first byte on ``implicit_tls_port``), each listing, downloading and
uploading with PROT P.

The server keeps ``tls_require_session_reuse`` at its default (on): every one of these clients
resumes the control connection's TLS session on its data connections, so a data connection that
did not resume would fail with ``522`` and fail the test. curl and lftp do several transfers in a
row over one control connection, which is what TLS 1.3 needs several session tickets for (a
client that has used up its tickets falls back to a full handshake, iterate-ch/cyberduck#18399).

Certificates come from ``trustme``; each client is given the CA and verifies the server's
certificate: ``--cacert`` (curl), ``ssl:ca-file`` (lftp), ``SSL_CERT_FILE`` (rclone: Go's
x509 reads it; rclone's ``--ca-cert`` is for HTTP only), an ``ssl.SSLContext`` (aioftp).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from .support import (
    NET_TIMEOUT,
    PAYLOAD,
    SMALL,
    Result,
    assert_file,
    client_env,
    listing_names,
    require,
    run,
    seed,
    sent_commands,
    top_names,
    upload_payload,
    write_local,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throw-away CA, and a server certificate and key it signed for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "::1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    with open(d / "cert.pem", "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    return {"ca": d / "ca.pem", "cert": d / "cert.pem", "key": d / "key.pem"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ftps(
    request: pytest.FixtureRequest, ftpd_factory: Callable[..., Any], ca_files: dict[str, Path]
) -> Iterator[Any]:
    """A seeded ftpd with explicit FTPS on its port and implicit FTPS on ``srv.implicit_port``;
    session reuse required (the default). The server's log is printed when the test fails."""
    failed_before = request.session.testsfailed
    port = _free_port()
    srv = ftpd_factory(
        tls="explicit",
        tls_cert=ca_files["cert"],
        tls_key=ca_files["key"],
        implicit_tls_port=port,
        log_level="debug",
    )
    srv.implicit_port = port
    srv.ca = ca_files["ca"]
    seed(srv.root)
    yield srv
    if request.session.testsfailed > failed_before:
        print(f"--- ftpd log (pid {srv.pid}, last 80 lines) ---")
        print("\n".join(srv.log().splitlines()[-80:]))


def assert_all_resumed(srv: Any) -> None:
    log = srv.log()
    assert "did not resume" not in log and "TLS on the data connection failed" not in log, log[
        -3000:
    ]


# --- curl ----------------------------------------------------------------------------------------


def curl(srv: Any, ws: Path, *args: str) -> Result:
    argv = [require("curl"), "-q", "-sS", "-v", "--max-time", "20"]
    argv += ["--connect-timeout", str(NET_TIMEOUT), "--cacert", str(srv.ca), *args]
    return run(argv, ws)


def url(srv: Any, path: str = "/", scheme: str = "ftp", port: int | None = None) -> str:
    return f"{scheme}://{srv.user}:{srv.password}@127.0.0.1:{port or srv.port}{path}"


def full_handshakes(res: Result) -> int:
    """TLS handshakes in which the server sent its certificate, i.e. not resumed ones."""
    return res.stderr.count("TLS handshake, Certificate (11)")


def test_curl_ssl_reqd_many_transfers_resume(ftps: Any, ws: Path) -> None:
    """``--ssl-reqd``: PROT P; four downloads, a listing and an upload in one curl run, over one
    control connection: one full handshake (the control's), every data connection resumed."""
    root: Path = ftps.root
    res = curl(ftps, ws, "--ssl-reqd", url(ftps))
    assert listing_names(res.stdout) == top_names(root)
    assert "PROT P" in sent_commands(res.stderr, "> ")

    urls = [url(ftps, "/hello.txt")] * 4 + [url(ftps, "/docs/")]
    outs = [a for i in range(4) for a in ("-o", f"got{i}.bin")] + ["-o", "list.txt"]
    res = curl(ftps, ws, "--ssl-reqd", *outs, *urls)
    for i in range(4):
        assert (ws / f"got{i}.bin").read_bytes() == PAYLOAD
    assert "readme.txt" in (ws / "list.txt").read_text()
    sent = sent_commands(res.stderr, "> ")
    assert (
        sent.count("RETR hello.txt") == 4 and sent.count("AUTH SSL") + sent.count("AUTH TLS") == 1
    )
    assert res.stderr.count("SSL re-using session ID") >= 5, res.describe()
    assert full_handshakes(res) == 1, res.describe()

    up = upload_payload("curl-ftps")
    local = write_local(ws, "up.bin", up)
    curl(ftps, ws, "--ssl-reqd", "-T", str(local), url(ftps, "/up.bin"))
    assert_file(root, "up.bin", up)

    # TLS 1.2 (session IDs, which curl reuses as often as it likes): uploads and downloads mixed
    # in one run. (TLS 1.3: test_curl_tls13_uploads_and_downloads_in_one_run.)
    tls12 = ["--tls-max", "1.2", "--ssl-reqd"]
    res = curl(
        ftps,
        ws,
        *tls12,
        "-T",
        str(local),
        url(ftps, "/up12.bin"),
        "--next",
        "--cacert",
        str(ftps.ca),
        *tls12,
        "-o",
        "d1.bin",
        url(ftps, "/hello.txt"),
        "--next",
        "--cacert",
        str(ftps.ca),
        *tls12,
        "-T",
        str(local),
        url(ftps, "/up12b.bin"),
    )
    assert_file(root, "up12.bin", up)
    assert_file(root, "up12b.bin", up)
    assert (ws / "d1.bin").read_bytes() == PAYLOAD
    assert full_handshakes(res) == 1, res.describe()
    assert_all_resumed(ftps)


def test_curl_tls13_uploads_and_downloads_in_one_run(ftps: Any, ws: Path) -> None:
    """TLS 1.3: curl uses each session ticket once, keeps only the newest and never reads an
    upload's data connection. Each PASV reply carries a fresh ticket (``tickets.py``), so ten
    uploads and downloads, interleaved in one run over one control connection, all resume:
    one full handshake in all, and no ``522``. With 8 tickets at the handshake, the transfer
    after the first upload could not resume."""
    up = upload_payload("curl-tls13")
    local = write_local(ws, "up.bin", up)
    args: list[str] = []
    for i in range(5):
        if args:
            args += ["--next", "--cacert", str(ftps.ca)]
        args += ["--tlsv1.3", "--ssl-reqd", "-T", str(local), url(ftps, f"/up13-{i}.bin")]
        args += ["--next", "--cacert", str(ftps.ca), "--tlsv1.3", "--ssl-reqd"]
        args += ["-o", f"d13-{i}.bin", url(ftps, "/hello.txt")]
    res = curl(ftps, ws, *args)
    for i in range(5):
        assert_file(ftps.root, f"up13-{i}.bin", up)
        assert (ws / f"d13-{i}.bin").read_bytes() == PAYLOAD
    assert "TLSv1.3" in res.stderr, res.describe()
    assert full_handshakes(res) == 1, res.describe()
    assert res.stderr.count("SSL re-using session ID") >= 10, res.describe()
    assert_all_resumed(ftps)


def test_curl_ftp_ssl_control_keeps_data_in_clear(ftps: Any, ws: Path) -> None:
    """``--ftp-ssl-control``: login under TLS, data connections in clear (allowed in explicit
    mode), so no PROT P and no TLS handshake on the data connections."""
    res = curl(ftps, ws, "--ftp-ssl-control", "-o", "got.bin", url(ftps, "/hello.txt"))
    assert (ws / "got.bin").read_bytes() == PAYLOAD
    sent = sent_commands(res.stderr, "> ")
    assert any(c.startswith("AUTH") for c in sent) and "PROT P" not in sent, sent
    assert "SSL re-using session ID" not in res.stderr
    local = write_local(ws, "up.bin", SMALL)
    curl(ftps, ws, "--ftp-ssl-control", "-T", str(local), url(ftps, "/clear.txt"))
    assert_file(ftps.root, "clear.txt", SMALL)


def test_curl_implicit(ftps: Any, ws: Path) -> None:
    """``ftps://`` is implicit FTPS in curl; it sends PBSZ/PROT P and resumes on data."""
    p = ftps.implicit_port
    res = curl(ftps, ws, url(ftps, "/", "ftps", p))
    assert listing_names(res.stdout) == top_names(ftps.root)
    assert "AUTH" not in " ".join(sent_commands(res.stderr, "> "))
    res = curl(
        ftps,
        ws,
        "-o",
        "a.bin",
        "-o",
        "b.bin",
        url(ftps, "/hello.txt", "ftps", p),
        url(ftps, "/hello.txt", "ftps", p),
    )
    assert (ws / "a.bin").read_bytes() == PAYLOAD == (ws / "b.bin").read_bytes()
    assert full_handshakes(res) == 1, res.describe()
    up = upload_payload("curl-implicit")
    local = write_local(ws, "up.bin", up)
    curl(ftps, ws, "-T", str(local), url(ftps, "/up-implicit.bin", "ftps", p))
    assert_file(ftps.root, "up-implicit.bin", up)
    assert_all_resumed(ftps)


# --- lftp ----------------------------------------------------------------------------------------

LFTP_SETTINGS = [
    f"set net:timeout {NET_TIMEOUT}",
    "set net:max-retries 1",
    "set net:reconnect-interval-base 1",
    "set net:persist-retries 0",
    "set cmd:fail-exit yes",
    "set xfer:clobber yes",
    "set ssl:verify-certificate yes",
]


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_lftp_ssl_force(ftps: Any, ws: Path, mode: str) -> None:
    """``ftp:ssl-force``: AUTH TLS before login, PROT P, then a listing, three downloads and three
    uploads on one control connection, every data connection resumed. A failed transfer makes
    lftp reconnect and retry, so "one connection" is what shows that none failed."""
    root: Path = ftps.root
    up = upload_payload("lftp-" + mode)
    write_local(ws, "up.bin", up)
    target = (
        f"-p {ftps.port} 127.0.0.1"
        if mode == "explicit"
        else f"ftps://127.0.0.1:{ftps.implicit_port}"
    )
    script = [
        *LFTP_SETTINGS,
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        f"set ssl:ca-file {ftps.ca}",
        "debug 5",
        f"open -u {ftps.user},{ftps.password} {target}",
        "ls",
        "get hello.txt -o g1.bin",
        "get hello.txt -o g2.bin",
        "get hello.txt -o g3.bin",
        *[f"put up.bin -o up-{mode}-{i}.bin" for i in range(3)],
    ]
    (ws / "script.lftp").write_text("\n".join(script) + "\n", encoding="utf-8")
    res = run([require("lftp"), "--norc", "-f", str(ws / "script.lftp")], ws)
    assert listing_names(res.stdout) == {"docs", "hello.txt"}
    for i in (1, 2, 3):
        assert (ws / f"g{i}.bin").read_bytes() == PAYLOAD
        assert_file(root, f"up-{mode}-{i - 1}.bin", up)
    sent = sent_commands(res.stderr, "---> ")
    assert "PROT P" in sent, sent
    if mode == "explicit":
        assert sent.index("AUTH TLS") < sent.index(f"USER {ftps.user}"), sent
    else:
        assert "AUTH TLS" not in sent, sent
    assert res.stderr.count("---- Connecting to") == 1, "lftp had to reconnect"
    assert_all_resumed(ftps)


# --- rclone --------------------------------------------------------------------------------------


def rclone(srv: Any, ws: Path, tls: str, *args: str) -> Result:
    exe = require("rclone")
    conf = ws / "rclone.conf"
    conf.touch()
    obscured = run([exe, "--config", str(conf), "obscure", srv.password], ws).stdout.strip()
    implicit = tls == "implicit"
    env = client_env(
        ws,
        SSL_CERT_FILE=str(srv.ca),
        RCLONE_CONFIG_X_TYPE="ftp",
        RCLONE_CONFIG_X_HOST="127.0.0.1",
        RCLONE_CONFIG_X_PORT=str(srv.implicit_port if implicit else srv.port),
        RCLONE_CONFIG_X_USER=srv.user,
        RCLONE_CONFIG_X_PASS=obscured,
    )
    env["RCLONE_CONFIG_X_TLS" if implicit else "RCLONE_CONFIG_X_EXPLICIT_TLS"] = "true"
    argv = [exe, "--config", str(conf), "--contimeout", f"{NET_TIMEOUT}s", "--timeout", "20s"]
    argv += ["--retries", "1", "--low-level-retries", "1", "--dump", "headers", "-vv", *args]
    return run(argv, ws, env=env)


def rclone_sent(res: Result) -> list[str]:
    return [
        line.split('FTP Tx: "', 1)[1].rstrip('"')
        for line in res.stderr.splitlines()
        if 'FTP Tx: "' in line
    ]


@pytest.mark.parametrize("tls", ["explicit", "implicit"])
def test_rclone(ftps: Any, ws: Path, tls: str) -> None:
    """``--ftp-explicit-tls`` / ``--ftp-tls`` (here as RCLONE_CONFIG_X_EXPLICIT_TLS / _TLS)."""
    root: Path = ftps.root
    res = rclone(ftps, ws, tls, "lsf", "x:")
    assert set(res.stdout.split()) == {"docs/", "hello.txt"}
    sent = rclone_sent(res)
    assert "PROT P" in sent, sent
    assert ("AUTH TLS" in sent) == (tls == "explicit"), sent

    rclone(ftps, ws, tls, "copyto", "x:hello.txt", str(ws / "got.bin"))
    assert (ws / "got.bin").read_bytes() == PAYLOAD

    src = ws / "src"
    files = {f"f{i}.bin": upload_payload(f"rclone-{tls}-{i}") for i in range(3)}
    for name, data in files.items():
        write_local(src, name, data)
    rclone(ftps, ws, tls, "copy", "--transfers", "1", str(src), "x:up")
    for name, data in files.items():
        assert_file(root, f"up/{name}", data)
    assert_all_resumed(ftps)


# --- aioftp's client, implicit -------------------------------------------------------------------


async def test_aioftp_client_implicit(ftps: Any, ws: Path) -> None:
    """``aioftp.Client(ssl=ctx)`` on the implicit port; PROT P sent by hand (aioftp's client has
    no call for it). aioftp resumes the control session on its data connections, and it runs the
    data TLS handshake as soon as it connects, before sending the transfer command."""
    import aioftp

    ctx = ssl.create_default_context(cafile=str(ftps.ca))
    up = upload_payload("aioftp")

    async def session() -> None:
        client = aioftp.Client(ssl=ctx, socket_timeout=5, connection_timeout=5)
        await client.connect("127.0.0.1", ftps.implicit_port)
        try:
            await client.login(ftps.user, ftps.password)
            await client.command("PBSZ 0", "200")
            await client.command("PROT P", "200")
            names = {str(path) for path, _info in await client.list()}
            assert names == top_names(ftps.root)
            async with client.download_stream("hello.txt") as stream:
                got = b"".join([block async for block in stream.iter_by_block()])
            assert got == PAYLOAD
            async with client.upload_stream("aioftp.bin") as stream:
                await stream.write(up)
            await client.quit()
        finally:
            client.close()

    try:
        await asyncio.wait_for(session(), 20)
    except TimeoutError:
        pytest.fail("aioftp's client hung: the data TLS handshake never completed")
    assert_file(ftps.root, "aioftp.bin", up)
    assert_all_resumed(ftps)
