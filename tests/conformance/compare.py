"""Compare two recordings (reference vs ftpd) into a list of differences.

Each reply is reduced to an ``Obs``: its code, whether it is multi-line, and the one part of its
text the protocol pins down (the quoted path of a ``257``, the value of a ``213`` to SIZE/MDTM/MFMT,
the parsed entry of an ``MLST``, the feature lines of ``FEAT``, the parsed listing of ``STAT <path>``).
Everything else in a reply's text is free-form (RFC 959 §4.2) and ignored. Data is compared byte for
byte, except listings, which are parsed into (name, type, size, mtime) entries: LIST has no standard
format (owner, group, link count and column widths differ between servers). ``check`` then holds
the differences against an allow-list (``allowlist.py``, and tests/s3's on top of it for S3).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .allowlist import ABSENT, EQUIVALENT_CODES, MLSX_PERM_LETTERS, Allow
from .harness import Recording, Reply, Scenario, StepRecord

TIME_SLACK = 300  # seconds: files written during the run differ by how long each server took


@dataclass(frozen=True)
class Obs:
    code: int | None
    multiline: bool = False
    detail: Any = None

    def __str__(self) -> str:
        parts = [] if self.code is None else [str(self.code)]
        if self.multiline:
            parts.append("(multi-line)")
        if self.detail is not None:
            parts.append(repr(self.detail))
        return " ".join(parts) or "-"


@dataclass(frozen=True)
class Diff:
    where: str  # "3.reply", "pre1.reply", "greeting", "5.data", "tree"
    ref: Any
    ftpd: Any
    raw_ref: str = ""
    raw_ftpd: str = ""

    def __str__(self) -> str:
        s = f"{self.where}: pyftpdlib {self.ref} / ftpd {self.ftpd}"
        if self.raw_ref or self.raw_ftpd:
            s += f"\n      pyftpdlib: {self.raw_ref}\n      ftpd:      {self.raw_ftpd}"
        return s


class Time:
    """A listing time: equal when both are the same day-with-year, or clock times within the slack."""

    __slots__ = ("epoch", "exact")

    def __init__(self, epoch: float, exact: bool) -> None:
        self.epoch = epoch
        self.exact = exact  # True for "Mmm dd YYYY" (day resolution) and MLSD's fixed times

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Time):
            return NotImplemented
        if self.exact and other.exact:
            return self.epoch == other.epoch
        if self.exact != other.exact:
            return False
        return abs(self.epoch - other.epoch) <= TIME_SLACK

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fmt = "%Y-%m-%d" if self.exact else "%Y-%m-%d %H:%M"
        return ("" if self.exact else "~") + time.strftime(fmt, time.gmtime(self.epoch))


# ---------------------------------------------------------------------------------- listings
_LIST_RE = re.compile(
    rb"^([-dlcbps])\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}:\d{2}|\d{4}) (.*)$"
)
_MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_list_line(line: bytes) -> tuple[Any, ...]:
    m = _LIST_RE.match(line)
    if m is None:
        return (line, "UNPARSABLE")
    kind, size, mon, day, when, name = m.groups()
    month, mday = _MONTHS.get(mon, 0), int(day)
    if b":" in when:
        hh, mm = (int(x) for x in when.split(b":"))
        year = time.gmtime().tm_year
        epoch = calendar.timegm((year, month, mday, hh, mm, 0))
        if epoch > time.time() + 86400:  # "recent" means the past six months
            epoch = calendar.timegm((year - 1, month, mday, hh, mm, 0))
        t = Time(epoch, exact=False)
    else:
        t = Time(calendar.timegm((int(when), month, mday, 0, 0, 0)), exact=True)
    return (name, kind.decode(), int(size), t)


def _name(entry: tuple[Any, ...]) -> bytes:
    return entry[0]


def parse_list(data: bytes) -> list[tuple[Any, ...]]:
    return sorted((parse_list_line(ln) for ln in _lines(data)), key=_name)


def _mlsx_entry(line: bytes) -> tuple[Any, ...]:
    """``type=file;size=3;modify=...; name`` -> (name, type, size, modify, perm letters)."""
    facts_s, sep, name = line.partition(b" ")
    if not sep:
        return (line, "UNPARSABLE")
    facts = {}
    for f in facts_s.split(b";"):
        k, eq, v = f.partition(b"=")
        if eq:
            facts[k.decode().lower()] = v.decode("utf-8", "replace")
    mod = facts.get("modify", "")
    modify: Any = None
    if re.fullmatch(r"\d{14}(\.\d+)?", mod):
        epoch = calendar.timegm(time.strptime(mod[:14], "%Y%m%d%H%M%S"))
        from .harness import FIXED_MTIME

        modify = Time(epoch, exact=epoch == FIXED_MTIME)
    typ = facts.get("type", "").lower()
    size = facts.get("size") if typ == "file" else "(dir)"
    perm = "".join(sorted(set(facts.get("perm", "")) & MLSX_PERM_LETTERS))
    return (name, typ, size, modify, perm)


def parse_mlsd(data: bytes) -> list[tuple[Any, ...]]:
    return sorted((_mlsx_entry(ln) for ln in _lines(data)), key=_name)


def _lines(data: bytes) -> list[bytes]:
    return [ln.rstrip(b"\r") for ln in data.split(b"\n") if ln.strip()]


def norm_data(verb: str, data: bytes | None) -> Any:
    if data is None:
        return None
    if verb == "LIST":
        return parse_list(data)
    if verb == "NLST":
        return sorted(_lines(data))
    if verb == "MLSD":
        return parse_mlsd(data)
    if verb in ("STOR", "APPE", "STOU"):
        return data or None  # the server sends nothing back on an upload
    if len(data) <= 64:
        return data
    import hashlib

    return f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:12]}"


# ---------------------------------------------------------------------------------- replies
def _quoted(text: bytes) -> bytes | None:
    i, j = text.find(b'"'), text.rfind(b'"')
    return text[i + 1 : j] if 0 <= i < j else None


def norm_reply(verb: str, r: Reply) -> Obs:
    code = EQUIVALENT_CODES.get(r.code, (r.code, ""))[0]
    detail: Any = None
    if code == 257:
        detail = _quoted(r.text)
    elif code == 213 and verb in ("SIZE", "MDTM"):
        detail = r.text.strip()
    elif code == 213 and verb == "MFMT":
        m = re.search(rb"Modify=(\d{14})", r.text)
        detail = m.group(1) if m else r.text
    elif code == 213 and verb == "STAT":
        detail = sorted((parse_list_line(ln.lstrip()) for ln in r.lines[1:-1]), key=_name)
    elif code == 250 and verb == "MLST":
        entries = [ln for ln in r.lines[1:-1] if ln.startswith(b" ")]
        detail = [_mlsx_entry(ln[1:]) for ln in entries] or r.lines
    elif code == 211 and verb == "FEAT":
        detail = sorted(ln.strip().decode("utf-8", "replace") for ln in r.lines[1:-1])
    elif code in (125, 150) and verb == "STOU":
        detail = "FILE:" if r.text.startswith(b"FILE: ") else r.text
    return Obs(code, r.multiline, detail)


def compare_step(prefix: str, ref: StepRecord, got: StepRecord) -> list[Diff]:
    diffs = []
    for role in sorted(set(ref.replies) | set(got.replies)):
        a, b = ref.replies.get(role), got.replies.get(role)
        oa = norm_reply(ref.verb, a) if a is not None else Obs(None)
        ob = norm_reply(got.verb, b) if b is not None else Obs(None)
        if oa != ob:
            diffs.append(Diff(f"{prefix}.{role}", oa, ob, str(a or "-"), str(b or "-")))
    da, db = norm_data(ref.verb, ref.data), norm_data(got.verb, got.data)
    if da != db:
        diffs.append(Diff(f"{prefix}.data", da, db))
    return diffs


def _rename_stou(tree: dict[bytes, Any], names: list[bytes]) -> dict[bytes, Any]:
    """Unique names differ by design: key STOU's files by their order instead."""
    out = {}
    for path, v in tree.items():
        base = path.rsplit(b"/", 1)[-1]
        if base in names:
            path = path[: len(path) - len(base)] + b"<STOU#%d>" % names.index(base)
        out[path] = v
    return out


def normalized_tree(rec: Recording) -> dict[bytes, Any]:
    return _rename_stou(rec.tree, rec.stou_names)


def compare(ref: Recording, got: Recording) -> list[Diff]:
    diffs: list[Diff] = []
    ga, gb = norm_reply("", ref.greeting), norm_reply("", got.greeting)
    if ga.code != gb.code:
        diffs.append(Diff("greeting", ga, gb, str(ref.greeting), str(got.greeting)))
    for i, (a, b) in enumerate(zip(ref.preamble, got.preamble, strict=True)):
        diffs += compare_step(f"pre{i}", a, b)
    for i, (a, b) in enumerate(zip(ref.steps, got.steps, strict=True)):
        diffs += compare_step(str(i), a, b)
    ta, tb = normalized_tree(ref), normalized_tree(got)
    if ta != tb:
        diffs.append(Diff("tree", tree_delta(ta, tb), tree_delta(tb, ta)))
    return diffs


def tree_delta(a: dict[bytes, Any], b: dict[bytes, Any]) -> dict[bytes, Any]:
    """Entries of ``a`` that ``b`` lacks or has differently."""
    return {k: v for k, v in sorted(a.items()) if b.get(k) != v}


# ---------------------------------------------------------------------------------- allow-lists
AllowList = Mapping[str, Mapping[str, Allow]]  # scenario id -> where -> entry


def _entry_for(allow: AllowList, sc_id: str, where: str) -> tuple[str, Allow] | None:
    entries = allow.get(sc_id, {})
    if where in entries:
        return where, entries[where]
    step = where.split(".", 1)[0]
    if step in entries:
        return step, entries[step]
    return None


def _ftpd_obs(got: Recording, where: str) -> Any:
    step, _, role = where.partition(".")
    rec = got.preamble[int(step[3:])] if step.startswith("pre") else got.steps[int(step)]
    if role == "data":
        return norm_data(rec.verb, rec.data)
    r = rec.replies.get(role)
    return None if r is None else norm_reply(rec.verb, r)


def check(
    sc: Scenario, ref: Recording, got: Recording, diffs: list[Diff], allow: AllowList
) -> list[str]:
    """Problems: differences not allow-listed, allow-listed steps where ftpd does not do what the
    entry says, and entries that match no difference."""
    problems: list[str] = []
    used: set[str] = set()
    for d in diffs:
        found = _entry_for(allow, sc.id, d.where)
        if found is None:
            problems.append(f"unexpected difference at {d}")
            continue
        key, entry = found
        used.add(key)
        if d.where == "tree":
            expected = dict(normalized_tree(ref))
            for path, value in (entry.tree or {}).items():
                if value is None:
                    expected.pop(path, None)
                else:
                    expected[path] = value
            actual = normalized_tree(got)
            if expected != actual:
                problems.append(
                    f"tree: allow-listed difference, but ftpd's tree is not the expected one: {d}"
                )
            continue
        obs = _ftpd_obs(got, d.where)
        role = d.where.partition(".")[2]
        want = entry.code
        if isinstance(want, Mapping) and role != "data":
            if role not in want:
                problems.append(f"{d.where}: the entry {key} says nothing about {role} ({d})")
            want = want.get(role)
        if role == "data" or want is None:
            pass
        elif want is ABSENT:
            if obs is not None:
                problems.append(f"{d.where}: allow-listed no reply, got {obs} ({d})")
        elif obs is None or obs.code != want:
            problems.append(f"{d.where}: allow-listed ftpd {want}, got {obs} ({d})")
        if entry.derive is not None:
            expected = entry.derive(d.ref)
            if expected != obs:  # expected on the left: it may hold tolerant matchers
                problems.append(f"{d.where}: allow-listed ftpd {expected}, got {obs} ({d})")
            continue
        problems += _pinned(d, key, entry, role, obs)
    for key in allow.get(sc.id, {}):
        if key not in used:
            problems.append(f"stale allow-list entry {sc.id} {key}: no such difference any more")
    return problems


def _rows(data: Any) -> Any:
    """A parsed listing as the (name, type, size) rows an entry states: times are the run's, and
    a directory's size is the filesystem's (4096 on ext4, 0 on S3), so both are left out."""
    if isinstance(data, list) and data and isinstance(data[0], tuple):
        return [(e[0], e[1], None if e[1] in ("d", "dir") else e[2]) for e in data]
    return data


def _pinned(d: Diff, key: str, entry: Allow, role: str, obs: Any) -> list[str]:
    """An allow-listed difference must not let data or pinned text through unstated: ftpd's data
    must be the entry's, and a reply's pinned part (a 257 path, a 213 value, a listing) must be
    the entry's ``detail`` or, when the entry has none, the reference's."""
    if role == "data":
        stated = entry.detail if "." in key else entry.data
        if stated is None:
            return [
                f"{d.where}: allow-listed data difference, but the entry {key} does not state "
                f"the data ftpd must send: {obs!r}"
            ]
        if stated is ABSENT:
            return [] if obs is None else [f"{d.where}: allow-listed no data, got {obs!r}"]
        if _rows(stated) != _rows(obs):
            return [f"{d.where}: allow-listed data {stated!r}, got {_rows(obs)!r}"]
        return []
    got_detail = None if obs is None else obs.detail
    if entry.detail is not None and "." in key:
        if entry.detail != got_detail:
            return [f"{d.where}: allow-listed detail {entry.detail!r}, got {got_detail!r}"]
        return []
    ref_detail = d.ref.detail if isinstance(d.ref, Obs) else None
    if got_detail is not None and got_detail != ref_detail:
        return [
            f"{d.where}: ftpd's reply text {got_detail!r} differs from pyftpdlib's "
            f"{ref_detail!r}; the entry {key} must pin it (detail)"
        ]
    return []


def allowlist_problems(allow: AllowList, by_id: Mapping[str, Scenario]) -> list[str]:
    """Malformed entries: an unknown scenario or step, no reason, nothing expected."""
    problems: list[str] = []
    for sc_id, entries in allow.items():
        if sc_id not in by_id:
            problems.append(f"allow-list names unknown scenario {sc_id}")
            continue
        sc = by_id[sc_id]
        # Every entry has a reason; "As above" may point to a full one in the same scenario.
        if entries and max(len(a.reason) for a in entries.values()) < 40:
            problems.append(f"{sc_id}: give the reason")
        for key, entry in entries.items():
            if not entry.reason.strip():
                problems.append(f"{sc_id} {key}: every entry needs a reason")
            if key == "tree":
                if not entry.tree:
                    problems.append(f"{sc_id}: a tree entry lists the paths that differ")
                continue
            step = key.split(".", 1)[0]
            index = int(step[3:]) if step.startswith("pre") else int(step)
            # The preamble is USER, PASS, CWD when the harness logs in.
            limit = (3 if sc.login else 0) if step.startswith("pre") else len(sc.steps)
            if not 0 <= index < limit:
                problems.append(f"{sc_id} {key}: no such step")
            if "." not in key and entry.detail is not None:
                problems.append(f"{sc_id} {key}: a whole-step entry states its data as data=")
            if entry.code is None and entry.detail is None and entry.derive is None:
                problems.append(f"{sc_id} {key}: expects nothing")
    return problems
