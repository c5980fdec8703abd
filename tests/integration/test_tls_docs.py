"""The FTPS set-up docs/TLS.md documents works as written: its openssl command makes an ECDSA P-256
certificate (the cheapest handshakes, docs/PERFORMANCE.md), ftpd starts with it, and a client
that checks the certificate logs in over TLS and sees an ECDSA key."""

from __future__ import annotations

import ftplib
import re
import shlex
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

from integ_helpers import TIMEOUT
from support.env import missing

DOC = Path(__file__).resolve().parents[2] / "docs" / "TLS.md"


def test_the_documented_certificate_is_ecdsa_p256_and_serves(tmp_path: Path, factory: Any) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl (the command docs/TLS.md gives)")
    line = next(ln for ln in DOC.read_text().splitlines() if ln.startswith("openssl req "))
    subprocess.run(shlex.split(line), cwd=tmp_path, check=True, capture_output=True, timeout=60)
    text = subprocess.run(
        [openssl, "x509", "-in", "cert.pem", "-noout", "-text"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "id-ecPublicKey" in text and re.search(r"NIST CURVE: P-256|prime256v1", text), text
    srv = factory(
        tls="explicit", tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem")
    )
    ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))  # the name is checked
    ftp = ftplib.FTP_TLS(context=ctx, timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port)  # the certificate names 127.0.0.1 too
    ftp.login(srv.user, srv.password)
    sock: Any = ftp.sock
    # The certificate the server presented is the documented one (its key: EC).
    der = sock.getpeercert(binary_form=True)
    assert der == ssl.PEM_cert_to_DER_cert((tmp_path / "cert.pem").read_text())
    ftp.quit()
