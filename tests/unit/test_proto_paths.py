"""Virtual path normalisation, the lexical half of the jail (ftpd.proto.paths).

Property: for any current directory and any argument built from awkward segments, the result is
absolute, normalised and never above ``/``; it equals POSIX normalisation of the joined path with
``..`` clamped at the root (what a chroot does).
"""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpd.proto import paths
from ftpd.proto.errors import FileUnavailable, NameNotAllowed
from ftpd.proto.paths import MAX_NAME, MAX_PATH, basename, parent, quote_path, resolve

SEGMENTS = ["..", ".", "", "a", "/", "b c", "é", "日本", "...", " ", "\udcff", "a..", "..b"]
segment_lists = st.lists(st.sampled_from(SEGMENTS), max_size=12)
args = segment_lists.map("/".join) | segment_lists.map("".join)
cwds = segment_lists.map(lambda segs: resolve("/", "/".join(segs)))


def _expected(cwd: str, arg: str) -> str:
    joined = arg if arg.startswith("/") else cwd + "/" + arg
    # posixpath.normpath clamps ".." at "/" for an absolute path, as a chroot does. Its one quirk
    # (two leading slashes are kept) is avoided by giving it exactly one.
    return posixpath.normpath("/" + joined.lstrip("/"))


@settings(max_examples=300)
@given(cwd=cwds, arg=args)
def test_resolve_is_absolute_normalised_and_jailed(cwd: str, arg: str) -> None:
    out = resolve(cwd, arg)
    assert out.startswith("/")
    assert "//" not in out
    assert out == "/" or not out.endswith("/")
    parts = out.split("/")[1:]
    assert "." not in parts and ".." not in parts
    assert out == _expected(cwd, arg)
    # Idempotent, and an absolute result does not depend on the directory it is resolved from.
    assert resolve("/", out) == out
    assert resolve(cwd, out) == out
    assert resolve(out, ".") == out


@given(cwd=cwds, depth=st.integers(1, 30))
def test_dotdot_never_climbs_above_root(cwd: str, depth: int) -> None:
    comps = [c for c in cwd.split("/") if c]
    ancestor = "/" + "/".join(comps[: max(0, len(comps) - depth)])
    assert resolve(cwd, "/".join([".."] * depth)) == ancestor
    assert resolve(cwd, "../" * (cwd.count("/") + depth) + "etc/passwd") == "/etc/passwd"


@pytest.mark.parametrize(
    ("cwd", "arg", "out"),
    [
        ("/", "..", "/"),
        ("/", "../../etc/passwd", "/etc/passwd"),
        ("/a/b", "..", "/a"),
        ("/a/b", "../c", "/a/c"),
        ("/a", "/x/./y//z/", "/x/y/z"),
        ("/a", "", "/a"),
        ("/a", ".", "/a"),
        ("/", "b c/ d", "/b c/ d"),
        ("/", "...", "/..."),
    ],
)
def test_resolve_examples(cwd: str, arg: str, out: str) -> None:
    assert resolve(cwd, arg) == out


def test_resolve_limits() -> None:
    with pytest.raises(FileUnavailable):
        resolve("/", "a\0b")
    with pytest.raises(NameNotAllowed) as exc:
        resolve("/", "x" * (MAX_NAME + 1))
    assert exc.value.code == 553
    assert resolve("/", "x" * MAX_NAME) == "/" + "x" * MAX_NAME
    with pytest.raises(NameNotAllowed):
        resolve("/", "é" * (MAX_NAME // 2 + 1))  # the limit is in bytes, not characters
    with pytest.raises(NameNotAllowed):
        resolve("/", "a/" * (MAX_PATH // 2 + 1))


@given(cwd=cwds, arg=args)
def test_a_remembered_answer_is_the_computed_one(cwd: str, arg: str) -> None:
    first = resolve(cwd, arg)
    assert (cwd, arg) in paths._RESOLVED  # short: remembered
    assert resolve(cwd, arg) == first == paths._resolve(cwd, arg) == _expected(cwd, arg)


def test_errors_are_raised_every_time_and_the_table_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(2):
        with pytest.raises(FileUnavailable):
            resolve("/", "a\0b")
        with pytest.raises(NameNotAllowed):
            resolve("/", "x" * (MAX_NAME + 1))
    long = "y/" * (paths._RESOLVED_LEN // 2 + 1)
    assert resolve("/", long) == "/" + long.rstrip("/")
    assert ("/", long) not in paths._RESOLVED  # too long to keep
    monkeypatch.setattr(paths, "_RESOLVED", {})
    monkeypatch.setattr(paths, "_RESOLVED_MAX", 8)
    for i in range(20):
        assert resolve("/d", f"f{i}") == f"/d/f{i}"
        assert len(paths._RESOLVED) <= 8


@pytest.mark.parametrize(
    ("vpath", "par", "base"),
    [
        ("/", "/", ""),
        ("/a", "/", "a"),
        ("/a/b c", "/a", "b c"),
    ],
)
def test_parent_basename(vpath: str, par: str, base: str) -> None:
    assert parent(vpath) == par and basename(vpath) == base


@pytest.mark.parametrize(
    ("vpath", "quoted"),
    [
        ("/", '"/"'),
        ('/a"b', '"/a""b"'),
        ('/"', '"/"""'),
        ("/a b", '"/a b"'),
    ],
)
def test_quote_path(vpath: str, quoted: str) -> None:
    assert quote_path(vpath) == quoted


@given(
    cwd=cwds,
    name=st.text(min_size=1, max_size=20).filter(
        lambda s: "/" not in s and "\0" not in s and s not in (".", "..")
    ),
)
def test_quote_path_round_trip(cwd: str, name: str) -> None:
    """What FileZilla/ftplib do: take the text between the outer quotes and undouble quotes."""
    vpath = resolve(cwd, name)
    q = quote_path(vpath)
    assert q[0] == q[-1] == '"' and q[1:-1].replace('""', '"') == vpath
