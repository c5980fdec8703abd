"""TLS 1.3 session tickets on demand: a fresh ticket for each PROT P data connection.

Under PROT P a data connection resumes the control connection's TLS session (RFC 4217 §10.2;
``tls_require_session_reuse``, vsftpd's ``require_ssl_reuse``), and under TLS 1.3 resuming takes a
session ticket. Clients use each ticket once (RFC 8446 §C.4); curl keeps only the newest. Python's
``ssl`` issues tickets only at the end of a handshake (``SSLContext.num_tickets``), so the server
used to send 8 with every control handshake: each costs 5-8 % of a handshake's server CPU here
(``bench/tls_tickets.py``), paid by every session whether it transfers or not, and 8 were still too
few for a client that uploads a ninth file (its upload connections are never read, so the tickets
sent on them are lost).

OpenSSL (3.0+) issues one more ticket on demand, ``SSL_new_session_ticket``; ``ssl`` does not
expose it, so this module calls it through ctypes on the ``SSL`` that an ``ssl.SSLObject`` wraps.
The control connection then sends no ticket at its handshake and one with each PASV/EPSV reply
(or before the 150 of an active transfer) under PROT P, just before the client can need it.

Reaching the ``SSL`` pointer relies on CPython's ``_ssl._SSLSocket`` struct starting with
``PyObject_HEAD; PyObject *Socket; SSL *ssl; PySSLContext *ctx`` (Modules/_ssl.c, unchanged
since 3.7) and ``PySSLContext`` with ``PyObject_HEAD; SSL_CTX *ctx``. Every pointer is checked
before it is used: the ``ctx`` field must be the object's own context, and OpenSSL must name
that context's ``SSL_CTX`` as the one of the ``SSL``. ``usable`` runs those checks on a throwaway
object once; where any of them fails (another Python, another layout, an OpenSSL without the
call, a ``_ssl`` that does not export it), tickets are issued at every handshake as before.
"""

from __future__ import annotations

import ctypes
import ssl
import sys
from typing import Any

__all__ = ["usable", "mint"]

_WORD = ctypes.sizeof(ctypes.c_void_p)
_HEAD = 2 * _WORD  # PyObject_HEAD: ob_refcnt, ob_type (a non-debug build)
_SSL_AT = _HEAD + _WORD  # PySSLSocket.ssl, after PySSLSocket.Socket
_CTX_AT = _HEAD + 2 * _WORD  # PySSLSocket.ctx
_SSL_CTX_AT = _HEAD  # PySSLContext.ctx


class _Calls:
    """The two libssl functions, resolved through ``_ssl``'s own handle: the library Python's
    ``ssl`` runs on, whatever other OpenSSL the process may have loaded."""

    __slots__ = ("new_ticket", "ssl_ctx_of")

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        self.new_ticket: Any = lib.SSL_new_session_ticket
        self.new_ticket.argtypes = [ctypes.c_void_p]
        self.new_ticket.restype = ctypes.c_int
        self.ssl_ctx_of: Any = lib.SSL_get_SSL_CTX
        self.ssl_ctx_of.argtypes = [ctypes.c_void_p]
        self.ssl_ctx_of.restype = ctypes.c_void_p


_calls: _Calls | None = None
_verified: bool | None = None  # None: not checked yet


def _word(address: int) -> int | None:
    return ctypes.c_void_p.from_address(address).value


def _ssl_of(obj: ssl.SSLObject, calls: _Calls) -> int | None:
    """The ``SSL *`` behind ``obj``, or None where the layout is not the expected one."""
    inner = getattr(obj, "_sslobj", None)
    if inner is None or type(inner).__basicsize__ < _CTX_AT + _WORD:
        return None
    context = inner.context
    if type(context).__basicsize__ < _SSL_CTX_AT + _WORD:
        return None
    if _word(id(inner) + _CTX_AT) != id(context):
        return None
    pointer = _word(id(inner) + _SSL_AT)
    ssl_ctx = _word(id(context) + _SSL_CTX_AT)
    if not pointer or not ssl_ctx or calls.ssl_ctx_of(pointer) != ssl_ctx:
        return None
    return pointer


def usable(ctx: ssl.SSLContext) -> bool:
    """Whether tickets can be issued on demand in this process (checked once, on a throwaway
    server object of ``ctx``)."""
    global _calls, _verified
    if _verified is None:
        _verified = False
        if sys.implementation.name == "cpython" and not hasattr(sys, "gettotalrefcount"):
            try:
                calls = _Calls()
            except (OSError, AttributeError):  # no libssl symbols there (OpenSSL < 3.0...)
                return False
            probe = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
            if _ssl_of(probe, calls) is not None:
                _calls, _verified = calls, True
    return _verified


def mint(obj: ssl.SSLObject) -> bool:
    """Ask OpenSSL for one more session ticket on ``obj``'s connection; it goes out with the
    connection's next write or ``do_handshake``. False (and nothing done) unless ``usable``
    said yes and the connection is a server's, past its handshake, under TLS 1.3."""
    calls = _calls
    if calls is None:
        return False
    pointer = _ssl_of(obj, calls)
    return pointer is not None and calls.new_ticket(pointer) == 1
