"""Where ftpd on the S3 backend differs from pyftpdlib, on top of the local backend's differences.

The S3 conformance run (test_s3_conformance.py) plays tests/conformance's scenarios against ftpd
with ``storage = "s3"`` and checks them against ``merged()``: tests/conformance/allowlist.py's
``ALLOW`` with ``S3_ALLOW`` laid over it. An ``S3_ALLOW`` entry replaces the local entry with the
same key; a ``Drop`` removes a local entry whose difference does not arise on S3 (so that it is not
reported stale). Every entry's reason starts with the tags of the ``FACTS`` that explain it (a
``Capabilities`` flag that is False for ``S3FS``, or a fact about object storage), and states what
ftpd answers instead: a code, a detail, a tree, or a rule (``derive``) that turns pyftpdlib's
observation into ftpd's. A difference is thereby asserted, never only tolerated.

``KNOWN_BUGS`` are scenarios whose S3 entry states the right behaviour and ftpd does not yet do it
(the fix is outside the S3 backend): they run as strict xfails, so the fix turns them into failures
until the scenario is taken off the list. No scenario is skipped: none seeds anything (such as a
symbolic link) that has no meaning in a bucket.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any

from conformance.allowlist import ABSENT, ALLOW, Allow
from conformance.compare import Obs, Time, norm_data
from conformance.harness import BASE_TREE, FIXED_MTIME, file_entry
from conformance.scenarios_files import UPLOAD


@dataclass(frozen=True)
class Fact:
    """Why the S3 backend behaves differently; ``capability``: the ``Capabilities`` flag (False
    for S3) that says so to FEAT and the command handlers, if there is one."""

    text: str
    capability: str = ""


FACTS: dict[str, Fact] = {
    "resume_write": Fact(
        "An object is written whole (PutObject or a multipart upload), never in place, so "
        "REST+STOR and APPE are refused before any data connection with 504 (RFC 959 §4.2: not "
        "implemented for that parameter), whatever the target, and the MLSx perm fact of a file "
        "has no 'a' (RFC 3659 §7.5.5).",
        "resume_write",
    ),
    "set_mtime": Fact(
        "An object's LastModified is the time it was written and no S3 call sets it: MFMT is "
        "answered 502 (not implemented, RFC 959 §4.2) whatever its argument, FEAT does not list "
        "it (RFC 2389 §3.2), and MDTM keeps showing the object's own time.",
        "set_mtime",
    ),
    "chmod": Fact(
        "Objects have no permission bits: SITE CHMOD (SITE is implemented, this parameter is "
        "not) is answered 504 whatever its argument.",
        "chmod",
    ),
    "atomic_rename_dir": Fact(
        "S3 has no rename: a directory would be one copy and one delete per object, neither "
        "atomic nor quick, so renaming a non-empty directory is refused with 550 (as SFTPGo and "
        "goofys do); an empty directory is only its marker and is renamed.",
        "atomic_rename_dir",
    ),
    "dir_prefix": Fact(
        "A directory is a key prefix (plus the 'dir/' marker MKD writes): ListObjectsV2 returns "
        "subdirectories as CommonPrefixes, which have no time and no size, so LIST, MLSD and "
        "STAT <dir> show a directory with size 0 dated the epoch; so does MLST of the home '/', "
        "which has no marker. MLST/MDTM of one directory read its marker's time."
    ),
    "copy_rename": Fact(
        "A rename is CopyObject then DeleteObject (an empty directory: a new marker): the result "
        "is a new object whose LastModified is the time of the rename, where rename(2) keeps "
        "the mtime."
    ),
    "utf8_keys": Fact(
        "Object keys are UTF-8: a name in another encoding (a legacy client, RFC 2640 §1) cannot "
        "name an object, so every command on one is refused with 550 (EINVAL) and nothing is "
        "created (the local backend keeps such names byte for byte)."
    ),
}

_TAG = re.compile(r"\[([a-z_0-9]+)\]")


def fact_tags(reason: str) -> list[str]:
    """The ``[fact]`` tags at the start of a reason."""
    tags = []
    pos = 0
    while m := _TAG.match(reason, pos):
        tags.append(m.group(1))
        pos = m.end()
    return tags


def s3(facts: str, text: str, **expect: Any) -> Allow:
    """An entry explained by the space-separated ``facts``."""
    return Allow("".join(f"[{f}]" for f in facts.split()) + " " + text, **expect)


@dataclass(frozen=True)
class Drop:
    """The local entry with this key does not apply: its difference does not arise on S3."""

    reason: str


def merged() -> dict[str, dict[str, Allow]]:
    """The local allow-list with the S3 entries laid over it."""
    out = {sc_id: dict(entries) for sc_id, entries in ALLOW.items()}
    for sc_id, entries in S3_ALLOW.items():
        mine = out.setdefault(sc_id, {})
        for key, entry in entries.items():
            if isinstance(entry, Drop):
                del mine[key]  # KeyError: a Drop must name a local entry
            else:
                mine[key] = entry
        if not mine:
            del out[sc_id]
    return out


# ---------------------------------------------------------------------------------- rules
EPOCH_DAY = Time(0, exact=True)  # LIST: "Jan  1  1970"
EPOCH = Time(0, exact=False)  # MLSx: modify=19700101000000 (compare.py pins only FIXED_MTIME)


def _entries(obs: Any, fn: Any) -> Any:
    """``obs`` (LIST/MLSD data, or a STAT/MLST reply's parsed entries) with ``fn`` applied to
    every listing entry."""
    if isinstance(obs, Obs):
        return dataclasses.replace(obs, detail=_entries(obs.detail, fn))
    if isinstance(obs, list):
        return [fn(e) if isinstance(e, tuple) else e for e in obs]
    return obs


def _prefix_dir(e: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(e) == 4 and e[1] == "d":  # LIST: (name, kind, size, time)
        return (e[0], "d", 0, EPOCH_DAY)
    if len(e) == 5 and e[1] == "dir":  # MLSx: (name, type, size, modify, perm)
        return (e[0], "dir", e[2], EPOCH, e[4])
    return e


def _no_append(e: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(e) == 5 and e[1] == "file":
        return (*e[:4], e[4].replace("a", ""))
    return e


def dirs_as_prefixes(obs: Any) -> Any:
    """[dir_prefix]: pyftpdlib's LIST/STAT listing with every directory at size 0, the epoch."""
    return _entries(obs, _prefix_dir)


def without_append(obs: Any) -> Any:
    """[resume_write]: pyftpdlib's MLST entries with no 'a' in a file's perm fact."""
    return _entries(obs, _no_append)


def mlsx_on_s3(obs: Any) -> Any:
    """[dir_prefix][resume_write]: an MLSD listing or MLST entry as the S3 backend gives it."""
    return _entries(obs, lambda e: _no_append(_prefix_dir(e)))


def dated_now(obs: Any) -> Any:
    """[copy_rename]: pyftpdlib's MLST entries dated now (the new marker's time)."""
    return _entries(obs, lambda e: (*e[:3], Time(time.time(), exact=False), *e[4:]))


class _RecentStamp:
    """An MDTM value (YYYYMMDDHHMMSS) within a few minutes of now."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, bytes) or not re.fullmatch(rb"\d{14}", other):
            return False
        return Time(_epoch(other), exact=False) == Time(time.time(), exact=False)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<a time-val of now>"


def _epoch(stamp: bytes) -> float:
    return calendar.timegm(time.strptime(stamp.decode(), "%Y%m%d%H%M%S"))


def mdtm_now(obs: Any) -> Obs:
    """[copy_rename]: MDTM answers the time of the copy."""
    return Obs(213, False, _RecentStamp())


# ---------------------------------------------------------------------------------- values
_CONTENT = dict(BASE_TREE)
SEEDED_MDTM = time.strftime("%Y%m%d%H%M%S", time.gmtime(FIXED_MTIME)).encode()
FEAT_S3 = [
    "EPRT",
    "EPSV",
    "HOST",
    "MDTM",
    "MLST type*;size*;modify*;perm*;unique*;unix.mode*;",
    "REST STREAM",
    "SIZE",
    "TVFS",
    "UTF8",
]


def seeded(name: str) -> tuple[str, int, str]:
    """The tree entry of an initial file, unchanged."""
    content = _CONTENT[name]
    assert content is not None
    return file_entry(content)


DIR = ("dir", 0, "")
REFUSED_504 = {"prelim": 504, "final": ABSENT}
REFUSED_550 = {"prelim": 550, "final": ABSENT}


def _listings(facts: str, derive: Any, *where: str) -> dict[str, Allow | Drop]:
    """Listing steps that differ only by the rule ``derive``."""
    text = f"The listing is pyftpdlib's as {derive.__name__} says (its docstring)."
    return {w: s3(facts, text, derive=derive) for w in where}


# ---------------------------------------------------------------------------------- entries
S3_ALLOW: dict[str, dict[str, Allow | Drop]] = {
    # ------------------------------------------------------------------ FEAT
    "params-feat": {
        "0.reply": s3(
            "set_mtime",
            "FEAT advertises only what the storage can do: no MFMT (otherwise as the local "
            "backend's FEAT, see _FEAT_REASON in the local list).",
            code=211,
            detail=FEAT_S3,
        ),
    },
    "login-feat-before-login": {
        "0.reply": s3(
            "set_mtime",
            "As in params-feat: with storage = s3 every account is on S3, so FEAT before USER "
            "(lftp sends it there) must not list MFMT either.",
            code=211,
            detail=FEAT_S3,
        ),
    },
    # ------------------------------------------------------------------ MFMT, SITE CHMOD
    "syntax-malformed-arguments": {
        "0.reply": s3(
            "set_mtime",
            "MFMT is not implemented on this storage: 502 before its argument is looked at.",
            code=502,
        ),
        "1.reply": s3("set_mtime", "As above.", code=502),
        "2.reply": s3("set_mtime", "As above.", code=502),
        "3.reply": s3("set_mtime", "As above.", code=502),
        "4.reply": s3("chmod", "SITE CHMOD is 504 before its argument is looked at.", code=504),
        "5.reply": s3("chmod", "As above.", code=504),
        "6.reply": s3("chmod", "As above.", code=504),
    },
    "file-mfmt": {
        "0.reply": s3("set_mtime", "MFMT is refused; the object keeps its time.", code=502),
        "1.reply": s3(
            "set_mtime", "MDTM: the seeded object's own time.", code=213, detail=SEEDED_MDTM
        ),
        "2.reply": s3("set_mtime", "As in step 0, for a missing file.", code=502),
        "3.reply": s3("set_mtime", "As in step 0, for a directory.", code=502),
        "4.reply": s3("set_mtime", "As in step 0.", code=502),
        "5.reply": s3("set_mtime", "As in step 1.", code=213, detail=SEEDED_MDTM),
    },
    "file-site-chmod": {
        "0.reply": s3("chmod", "SITE CHMOD is refused on a file.", code=504),
        "1.reply": s3("chmod", "As above, on a directory.", code=504),
        "2.reply": s3("chmod", "As above, on a missing file.", code=504),
        "3.reply": s3("chmod", "As above, lower-case.", code=504),
    },
    # ------------------------------------------------------------------ REST+STOR, APPE
    "appe": {
        "1": s3("resume_write", "APPE to an existing file is refused.", code=REFUSED_504),
        "2": s3("resume_write", "APPE is refused even for a new file.", code=REFUSED_504),
        "3": s3("resume_write", "As above.", code=REFUSED_504),
        "4": s3("resume_write", "No APPE created new.txt: RETR finds nothing.", code=REFUSED_550),
        "4.data": s3("resume_write", "As above: no data.", detail=ABSENT),
        "5.prelim": s3(
            "resume_write", "Refused before the target (a directory) is looked at.", code=504
        ),
        "tree": s3(
            "resume_write",
            "a.txt is unchanged and new.txt was never created.",
            tree={b"a.txt": seeded("a.txt"), b"new.txt": None},
        ),
    },
    "rest-appe": {
        "2": s3(
            "resume_write", "REST+APPE is refused (the local backend resumes).", code=REFUSED_504
        ),
        "tree": Drop("[resume_write] a.txt keeps its 30 bytes, as in pyftpdlib."),
    },
    "rest-stor": {
        "2": s3("resume_write", "REST+STOR is refused.", code=REFUSED_504),
        "4.data": s3(
            "resume_write",
            "bin.dat is unchanged (pyftpdlib overwrote bytes 10-16).",
            detail=norm_data("RETR", _CONTENT["bin.dat"]),
        ),
        "tree": s3("resume_write", "As above.", tree={b"bin.dat": seeded("bin.dat")}),
    },
    "rest-stor-full-resume": {
        "4": s3("resume_write", "The resuming STOR is refused.", code=REFUSED_504),
        "5.data": s3(
            "resume_write",
            "part.bin is still the first 300 bytes a client would resume from.",
            detail=norm_data("RETR", UPLOAD[:300]),
        ),
        "tree": s3("resume_write", "As above.", tree={b"part.bin": file_entry(UPLOAD[:300])}),
    },
    "rest-stor-beyond-end": {
        "2.prelim": s3(
            "resume_write",
            "REST+STOR is refused whatever the offset (pyftpdlib: 554 for this one).",
            code=504,
        ),
    },
    # ------------------------------------------------------------------ renames
    "file-rename-chain": {
        "7.reply": s3("atomic_rename_dir", "RNTO of the non-empty sub is refused.", code=550),
        "8.reply": s3("atomic_rename_dir", "Follows: there is no sub2 to CWD into.", code=550),
        "9.reply": s3(
            "atomic_rename_dir",
            "Follows: still in /file-rename-chain, where there is no c.txt.",
            code=550,
        ),
        "10.reply": s3("atomic_rename_dir", "Follows: RNTO without RNFR.", code=503),
        "12.reply": s3("atomic_rename_dir", "Follows: CDUP went to /, no emptydir.", code=550),
        "13.reply": s3("atomic_rename_dir", "Follows: RNTO without RNFR.", code=503),
        "tree": s3(
            "atomic_rename_dir",
            "The files moved until step 5; the rest stays (file-rename-keeps-facts plays the "
            "renames this scenario could not reach).",
            tree={
                b"final.txt": None,
                b"sub2": None,
                b"sub2/deeper": None,
                b"sub2/inner.txt": None,
                b"sub2/moved": None,
                b"emptydir": DIR,
                b"sub": DIR,
                b"sub/c.txt": seeded("a.txt"),
                b"sub/deeper": DIR,
                b"sub/inner.txt": seeded("sub/inner.txt"),
            },
        ),
    },
    "file-rename-spaces-quotes": {
        "3.reply": s3("atomic_rename_dir", "RNTO of the non-empty sub is refused.", code=550),
        "tree": s3(
            "atomic_rename_dir",
            "As above: sub keeps its name.",
            tree={
                b" sub lead": None,
                b" sub lead/deeper": None,
                b" sub lead/inner.txt": None,
                b"sub": DIR,
                b"sub/deeper": DIR,
                b"sub/inner.txt": seeded("sub/inner.txt"),
            },
        ),
    },
    "file-rename-keeps-facts": {
        "4.reply": s3(
            "copy_rename", "MDTM of the renamed file is the copy's time.", derive=mdtm_now
        ),
        "14.reply": s3(
            "copy_rename", "The moved empty directory is a new marker, dated now.", derive=dated_now
        ),
    },
    # ------------------------------------------------------------------ names
    "dir-mkd-non-utf8": {
        "0.reply": s3("utf8_keys", "MKD of a Latin-1 name is refused.", code=550),
        "1.reply": s3("utf8_keys", "CWD to it is refused.", code=550),
        "2.reply": s3(
            "utf8_keys", "Still in the scenario directory.", code=257, detail=b"/dir-mkd-non-utf8"
        ),
        "tree": s3("utf8_keys", "Nothing was created.", tree={b"\xef\xbf\xbdt\xef\xbf\xbd": None}),
    },
    "path-non-utf8-file": {
        "1": s3("utf8_keys", "STOR of a Latin-1 name is refused.", code=REFUSED_550),
        "2": s3("utf8_keys", "RETR of it is refused.", code=REFUSED_550),
        "2.data": s3("utf8_keys", "As above: no data.", detail=ABSENT),
        "3.reply": s3("utf8_keys", "SIZE of it is refused.", code=550),
        "tree": s3("utf8_keys", "Nothing was created.", tree={b"caf\xef\xbf\xbd.bin": None}),
    },
    # ------------------------------------------------------------------ facts and listings
    "file-mlst": {
        "0.reply": s3("resume_write", "No 'a' in a file's perm fact.", derive=without_append),
        "4.reply": s3("resume_write", "As above.", derive=without_append),
        "5.reply": s3(
            "dir_prefix", "MLST / : the home has no marker, so no time.", derive=dirs_as_prefixes
        ),
        "6.reply": s3("resume_write", "As in step 0.", derive=without_append),
    },
    "path-quote-in-file-name": {
        "2.reply": s3("resume_write", "No 'a' in a file's perm fact.", derive=without_append),
    },
    "stat-listing": _listings("dir_prefix", dirs_as_prefixes, "1.reply"),
    "list-cwd": _listings("dir_prefix", dirs_as_prefixes, "0.data"),
    "list-dir": _listings("dir_prefix", dirs_as_prefixes, "0.data", "2.data"),
    "list-flags": _listings("dir_prefix", dirs_as_prefixes, "0.data", "1.data", "2.data", "3.data"),
    "list-modes": _listings("dir_prefix", dirs_as_prefixes, "0.data", "1.data", "2.data"),
    "list-after-upload": _listings("dir_prefix", dirs_as_prefixes, "1.data"),
    "path-escape-attempts": _listings("dir_prefix", dirs_as_prefixes, "4.data"),
    "path-url-special-names": _listings("dir_prefix", dirs_as_prefixes, "15.data"),
    "net-epsv-all-then-transfers": _listings("dir_prefix", dirs_as_prefixes, "1.data"),
    "login-anonymous": _listings("dir_prefix", dirs_as_prefixes, "5.data"),
    "mlsd-variants": _listings("dir_prefix resume_write", mlsx_on_s3, "0.data", "1.data", "5.data"),
    "params-opts-mlst": _listings("dir_prefix resume_write", mlsx_on_s3, "7.data"),
    "login-anonymous-read-only": _listings("dir_prefix resume_write", mlsx_on_s3, "0.data"),
}

# Scenario id -> the bug (outside ftpd/fs/s3*.py) that keeps ftpd from what its S3 entry states.
KNOWN_BUGS: dict[str, str] = {}
