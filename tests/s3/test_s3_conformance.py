"""tests/conformance's scenarios against ftpd on the S3 backend, compared with pyftpdlib.

The scenario list, the harness and the comparison are the local suite's (tests/conformance); only
where ftpd keeps its files changes. ``S3Home`` seeds a scenario's initial tree into the bucket as
ftpd itself would have written it (an object per file, a ``dir/`` marker per directory), every key
dated ``FIXED_MTIME`` like the local tree's files, and reads the tree back through the S3 API. The
differences allowed are the local ``ALLOW`` plus ``allowlist_s3.S3_ALLOW``, each of which asserts
what ftpd answers on S3. One moto server (the session's), one pyftpdlib and one ftpd serve the
whole module; each scenario has its own directory, as in the local suite.

On S3 every account is its own key prefix (``<s3_prefix>/<name>/``): scenarios that log in
anonymously get their tree in the anonymous account's home, where the local suite's anonymous
home is the user's.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from conformance.allowlist import ALLOW
from conformance.compare import allowlist_problems, check, compare
from conformance.harness import (
    DIR_ENTRY,
    FIXED_MTIME,
    Cmd,
    LocalHome,
    RefServer,
    Scenario,
    Tree,
    file_entry,
    initial_tree,
    run_scenario,
)
from conformance.scenarios import BY_ID, SCENARIOS
from support.server import pasv_block, start_ftpd

from ftpd.auth import ANONYMOUS_NAMES
from ftpd.fs.base import Capabilities
from ftpd.fs.s3 import DIR_CONTENT_TYPE, S3FS

from .allowlist_s3 import FACTS, KNOWN_BUGS, S3_ALLOW, Drop, fact_tags, merged
from .conftest import BUCKET, PREFIX, REGION, aws_env
from .moto_launcher import SEED_PATH

pytestmark = [
    pytest.mark.conformance,
    # pyftpdlib imports asyncore/asynchat, deprecated since Python 3.10.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ALLOW_S3 = merged()


def account(sc: Scenario) -> str:
    """The account whose home ``sc`` works in."""
    if sc.login == "anonymous":
        return "anonymous"
    for st in sc.steps:
        if isinstance(st, Cmd):
            line = st.line if isinstance(st.line, str) else st.line.decode("utf-8", "replace")
            verb, _, arg = line.partition(" ")
            if verb.upper() == "USER" and arg.strip().lower() in ANONYMOUS_NAMES:
                return "anonymous"
    return "user"


@dataclass(frozen=True)
class S3Home:
    """The scenario directories in the bucket: ``<PREFIX>/<account>/<scenario id>/``."""

    endpoint: str
    client: Any  # a boto3 S3 client: the bucket as seen from outside ftpd

    def base(self, sc: Scenario) -> str:
        return f"{PREFIX}/{account(sc)}/{sc.id}/"

    def populate(self, sc: Scenario) -> None:
        base = self.base(sc)
        marker = {"body": "", "mtime": FIXED_MTIME, "content_type": DIR_CONTENT_TYPE}
        objects: list[dict[str, Any]] = [{"key": base, **marker}]
        for name, content in initial_tree(sc):
            if content is None:
                objects.append({"key": f"{base}{name}/", **marker})
            else:
                body = base64.b64encode(content).decode()
                objects.append({"key": base + name, "body": body, "mtime": FIXED_MTIME})
        # One request (see moto_launcher.py): PutObject cannot date an object in the past.
        spec = json.dumps({"bucket": BUCKET, "objects": objects}).encode()
        req = urllib.request.Request(self.endpoint + SEED_PATH, data=spec, method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 200

    def snapshot(self, sc: Scenario) -> Tree:
        """Files are objects; directories are markers and the prefixes of any key. An object
        whose ETag is the MD5 of a seeded file's content (a single-part upload's ETag is its
        MD5) holds that content; any other is read."""
        base = self.base(sc)
        seeded = {
            hashlib.md5(content, usedforsecurity=False).hexdigest(): file_entry(content)
            for _, content in initial_tree(sc)
            if content is not None
        }
        out: Tree = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=base)
        for page in pages:
            for obj in page.get("Contents") or ():
                rel = obj["Key"][len(base) :]
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    out["/".join(parts[:i]).encode()] = DIR_ENTRY
                if not rel.endswith("/"):
                    entry = seeded.get(obj["ETag"].strip('"'))
                    if entry is None:
                        got = self.client.get_object(Bucket=BUCKET, Key=obj["Key"])
                        entry = file_entry(got["Body"].read())
                    # A file and a directory of one name cannot both exist on a disk.
                    out[rel.encode()] = entry if rel.encode() not in out else ("both", 0, "")
        out.pop(b"", None)  # the scenario directory's own marker
        return out

    def pending_uploads(self, sc: Scenario) -> list[str]:
        resp = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.base(sc))
        return [u["Key"] for u in resp.get("Uploads") or ()]


@dataclass
class S3Pair:
    ref: RefServer
    ftpd: Any  # support.server.FtpdProcess
    home: S3Home


@pytest.fixture(scope="module")
def s3pair(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Pair]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("s3-conformance")
    env = aws_env(base)
    req = urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=BotoConfig(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    ref_home = base / "ref-home"
    ref_home.mkdir()
    with contextlib.ExitStack() as stack:
        ref = RefServer(ref_home, stack.enter_context(pasv_block()))
        stack.callback(ref.stop)
        ftpd = start_ftpd(
            base / "ftpd",
            env=env,  # the ftpd process gets the fake AWS credentials
            storage="s3",
            s3_endpoint=moto_endpoint,
            s3_bucket=BUCKET,
            s3_prefix=PREFIX,
            s3_region=REGION,
            login_fail_delay=0,
            max_login_attempts=3,
            anonymous=True,
            log_level="info",  # debug would add botocore's every request
        )
        stack.callback(ftpd.stop)
        yield S3Pair(ref, ftpd, S3Home(moto_endpoint, client))


def _params() -> list[Any]:
    out = []
    for sc in SCENARIOS:
        marks = []
        if sc.id in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[sc.id], strict=True))
        out.append(pytest.param(sc, id=sc.id, marks=marks))
    return out


@pytest.mark.parametrize("sc", _params())
def test_scenario(s3pair: S3Pair, sc: Scenario) -> None:
    ref_home = LocalHome(s3pair.ref.home)
    ref_home.populate(sc)
    s3pair.home.populate(sc)
    ref = run_scenario(s3pair.ref.host, s3pair.ref.port, ref_home, sc, s3pair.ref.password)
    got = run_scenario(s3pair.ftpd.host, s3pair.ftpd.port, s3pair.home, sc, s3pair.ftpd.password)
    problems = check(sc, ref, got, compare(ref, got), ALLOW_S3)
    # An aborted or failed upload must not leave a multipart upload behind (it costs storage).
    leftovers = s3pair.home.pending_uploads(sc)
    if leftovers:
        problems.append(f"multipart uploads left behind: {leftovers}")
    log = "\n".join(s3pair.ftpd.log().splitlines()[-30:])
    assert not problems, f"{sc.id}:\n  " + "\n  ".join(problems) + f"\nftpd log tail:\n{log}"


# ---------------------------------------------------------------------------------- meta tests
def test_seeded_tree_is_the_local_one(s3pair: S3Pair) -> None:
    """The bucket holds what the local suite's disk holds, dated the same, with the markers
    ftpd's MKD writes: the comparison starts from the same state."""
    sc = Scenario("seed-self-check", (), big=True)
    local = LocalHome(s3pair.ref.home)
    local.populate(sc)
    s3pair.home.populate(sc)
    assert s3pair.home.snapshot(sc) == local.snapshot(sc)
    base = s3pair.home.base(sc)
    for name, content in initial_tree(sc):
        key = base + name + ("/" if content is None else "")
        head = s3pair.home.client.head_object(Bucket=BUCKET, Key=key)
        assert head["LastModified"].timestamp() == FIXED_MTIME, key
        if content is None:
            assert head["ContentType"] == DIR_CONTENT_TYPE, key
    anon = dataclasses.replace(sc, id="seed-anonymous", login="anonymous")
    assert s3pair.home.base(anon) == f"{PREFIX}/anonymous/seed-anonymous/"


def test_s3_allowlist_is_well_formed() -> None:
    assert allowlist_problems(ALLOW_S3, BY_ID) == []
    for sc_id, entries in S3_ALLOW.items():
        for key, entry in entries.items():
            tags = fact_tags(entry.reason)
            assert tags, f"{sc_id} {key}: name the fact(s) first, as [fact]"
            assert set(tags) <= set(FACTS), f"{sc_id} {key}: unknown fact in {tags}"
            if isinstance(entry, Drop):
                assert key in ALLOW.get(sc_id, {}), f"{sc_id} {key}: drops no local entry"
    for sc_id, reason in KNOWN_BUGS.items():
        assert sc_id in S3_ALLOW and len(reason) >= 40, sc_id
    used = {
        t for entries in S3_ALLOW.values() for e in entries.values() for t in fact_tags(e.reason)
    }
    assert used == set(FACTS), f"facts no entry cites: {set(FACTS) - used}"


def test_capability_facts_are_the_backends_flags() -> None:
    """A fact that names a capability is one the S3 backend lacks and the local backend has."""
    flags = {f.name for f in dataclasses.fields(Capabilities)}
    for name, fact in FACTS.items():
        if fact.capability:
            assert fact.capability in flags, name
            assert getattr(S3FS.capabilities, fact.capability) is False, name
            assert getattr(Capabilities(), fact.capability) is True, name
