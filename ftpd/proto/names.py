"""The wire form of names: never invalid UTF-8 (RFC 2640), yet every name on disk reachable.

ftpd lists ``UTF8`` in FEAT and is always in UTF-8 mode, so strict clients (Python's ftplib and
others) decode every reply and listing as UTF-8 and fail on the first byte that is not: one file
with a Latin-1 name used to break the whole listing of its directory. A name on disk need not be
UTF-8 (an upload from a legacy client, files copied from an old system); Python gives us its
undecodable bytes as surrogate escapes (U+DC80..U+DCFF, PEP 383).

On the wire each such byte is U+FFFD (the replacement character) followed by the byte's two
upper-case hex digits: the file ``caf\\xe9.txt`` is listed as ``caf\ufffdE9.txt``. A client that
sends this form back (RETR, DELE, RNFR/RNTO, CWD, MKD...) reaches the file: ``from_wire`` turns it
back into the byte, so the escape is reversible. A literal U+FFFD in a name (valid UTF-8) is
doubled where it would otherwise read as an escape, i.e. before another U+FFFD or before two hex
digits 80..FF, so that two names never share a wire form; elsewhere it is shown as it is. Raw
non-UTF-8 bytes from a legacy client are still accepted as they come (``lines.py``).
"""

from __future__ import annotations

import re

__all__ = ["ESC", "to_wire", "from_wire", "encode"]

ESC = "\ufffd"
_ESC_UTF8 = ESC.encode("utf-8")
# What follows ESC in an escape: a second ESC (a literal U+FFFD) or the hex of a byte 80..FF.
_ESCAPE = re.compile("\ufffd(\ufffd|[89A-Fa-f][0-9A-Fa-f])")
_HEX_BYTE = re.compile("[89A-Fa-f][0-9A-Fa-f]")


def _is_escaped_byte(ch: str) -> bool:
    return "\udc80" <= ch <= "\udcff"


def to_wire(text: str) -> str:
    """``text`` with undecodable bytes escaped (and ambiguous U+FFFD doubled): valid UTF-8."""
    out: list[str] = []
    for i, ch in enumerate(text):
        if _is_escaped_byte(ch):
            out.append(f"{ESC}{ord(ch) - 0xDC00:02X}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("?")  # not from surrogateescape, so not from a name: nothing to keep
        elif ch == ESC:
            nxt = text[i + 1 : i + 2]
            ambiguous = nxt == ESC or _is_escaped_byte(nxt) or _HEX_BYTE.match(text, i + 1)
            out.append(ESC + ESC if ambiguous else ESC)
        else:
            out.append(ch)
    return "".join(out)


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    return ESC if code == ESC else chr(0xDC00 + int(code, 16))


def from_wire(text: str) -> str:
    """A name as the client sent it back to the name on disk (the inverse of ``to_wire``)."""
    if ESC not in text:
        return text
    return _ESCAPE.sub(_unescape, text)


def encode(text: str) -> bytes:
    """``text`` as UTF-8 bytes for the wire (replies, listings)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: a name that is not UTF-8
        return to_wire(text).encode("utf-8")
    if _ESC_UTF8 in data:
        return to_wire(text).encode("utf-8")
    return data
