"""Fixtures of the S3 backend tests: a moto S3 server process on 127.0.0.1, reset before every test.

``moto_endpoint`` starts moto's server (``moto_launcher.py``: ``python -m moto.server`` plus a
route to seed many keys at once) on 127.0.0.1 once per test session (the kernel picks a free port;
the server prints it) and stops it by PID at the end. ``bucket`` wipes
moto's state (``POST /moto-api/reset``) and creates an empty bucket, so every test starts from
nothing. The AWS variables point botocore at fake credentials and never at a metadata service or
the machine's ``~/.aws`` files; the ftpd processes started by the tests inherit them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from ftpd.fs.s3 import S3FS, S3Storage
from ftpd.fs.s3_client import user_prefix

from .moto_launcher import SEED_PATH

BUCKET = "ftpd-test"
PREFIX = "homes"
REGION = "us-east-1"
_READY = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


def aws_env(tmp: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",  # never look for an instance role off loopback
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("moto")
    log_path = tmp / "moto.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_launcher.py")), "127.0.0.1", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            match = _READY.search(log_path.read_text(errors="replace"))
            if match:
                endpoint = match.group(1)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in aws_env(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def inspect(moto_endpoint: str, _aws_env: None) -> Any:
    """A plain boto3 client, to look at the bucket from outside the code under test."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(moto_endpoint: str, inspect: Any) -> str:
    req = urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    inspect.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
async def storage(moto_endpoint: str, bucket: str) -> AsyncIterator[S3Storage]:
    st = S3Storage(bucket, PREFIX, moto_endpoint, REGION)
    yield st
    await st.close()


@pytest.fixture
def fs(storage: S3Storage) -> S3FS:
    return S3FS(storage, user_prefix(PREFIX, "alice"))


def seed(endpoint: str, keys: list[tuple[str, int]]) -> None:
    """Create many small objects at once (see moto_launcher.py)."""
    body = json.dumps({"bucket": BUCKET, "keys": keys}).encode()
    req = urllib.request.Request(endpoint + SEED_PATH, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200


def keys(inspect: Any, prefix: str = "") -> list[str]:
    """Every key under ``prefix`` (paged)."""
    out: list[str] = []
    for page in inspect.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents") or ()]
    return out


def pending_uploads(inspect: Any) -> list[str]:
    """Keys of the multipart uploads started and neither completed nor aborted."""
    return [u["Key"] for u in inspect.list_multipart_uploads(Bucket=BUCKET).get("Uploads") or ()]
