"""A reply's wire form (RFC 959 §4.2), made once: ``Reply.encode`` keeps it, so the handlers'
constant replies (331, 230, 221, 200 NOOP, 226...) are formatted once per process."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ftpd.proto.handlers import info, login
from ftpd.proto.replies import Reply


def _plain(code: int, lines: tuple[str, ...]) -> bytes:
    """RFC 959 §4.2 written out: one line ``DDD text``, or ``DDD-first`` / `` inner`` / ``DDD last``,
    CR, LF and NUL escaped (no reply text can inject a line)."""

    def safe(t: str) -> str:
        return t.replace("\r", "\\r").replace("\n", "\\n").replace("\0", "\\0")

    if len(lines) == 1:
        out = f"{code} {safe(lines[0])}\r\n"
    else:
        out = f"{code}-{safe(lines[0])}\r\n"
        out += "".join(f" {safe(t)}\r\n" for t in lines[1:-1])
        out += f"{code} {safe(lines[-1])}\r\n"
    return out.encode("utf-8")


@given(
    st.integers(100, 599),
    st.lists(st.text(st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=4),
)
def test_the_kept_wire_form_is_the_wire_form(code: int, lines: list[str]) -> None:
    reply = Reply(code, *lines)
    first = reply.encode()
    assert first == _plain(code, tuple(lines))
    assert reply.encode() == first  # the kept form, unchanged
    assert reply.raw is None  # still a whole reply, not a ``part``


def test_the_handlers_constant_replies_go_out_as_written() -> None:
    assert login._USER_OK.encode() == b"331 Username ok, send password.\r\n"
    assert login._LOGGED_IN.encode() == b"230 Login successful.\r\n"
    assert login._GOODBYE.encode() == b"221 Goodbye.\r\n"
    assert info._NOOP_OK.encode() == b"200 NOOP ok.\r\n"
    # Shared by every session, so encoding one twice gives the same bytes (nothing appends).
    assert login._GOODBYE.encode() == b"221 Goodbye.\r\n"


def test_a_part_keeps_its_given_bytes() -> None:
    part = Reply.part(213, b" a line\r\n", "note")
    assert part.encode() == b" a line\r\n" and part.lines == ("note",)
