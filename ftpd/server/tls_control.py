"""TLS on control connections (AUTH TLS and the implicit FTPS listener), run by ftpd itself.

A control connection goes TLS over its plain transport through ``ssl.MemoryBIO``, as data
connections do (``tls.TlsData``), rather than through ``loop.start_tls`` or
``connect_accepted_socket(ssl=...)``. The loop's SSL protocol costs a session more than the TLS
does: uvloop's allocates a 256 KiB read buffer per connection (its own mapping under the fixed mmap
threshold of ``memory.py``: an mmap, a page fault and an munmap per session, and resident pages
for as long as the session lives) on top of a protocol and a transport object. Here the bytes the
plain transport receives go straight into the incoming BIO (no receive buffer of our own), and a
reply is encrypted and handed to the plain transport in one write. Beyond OpenSSL's own SSL object
(~16 KiB) a session holds one small object with slots.

``TlsControl`` is at once the protocol installed on the plain transport and the transport the
channel writes to. Session IDs and tickets come from the shared ``SSLContext``, so data
connections resume the control connection's session as before (``tls_require_session_reuse``);
under TLS 1.3 each PROT P data connection gets its own ticket, sent just before the client can need
it (``issue_ticket``).
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from typing import Any

from . import tickets

__all__ = ["TlsControl", "READ_SIZE"]

READ_SIZE = 16384  # one TLS record's worth of plaintext per read (RFC 8446 §5.1)


class State(enum.Enum):
    HANDSHAKE = "handshake"  # waiting for the client's flights; the app hears nothing yet
    OPEN = "open"  # application data both ways
    CLOSED = "closed"  # closed or aborted by us, failed, or lost


class TlsControl(asyncio.Transport, asyncio.Protocol):
    """TLS (server side) for one control connection, over its plain transport ``raw``.

    As a protocol it takes the plain transport's events: received bytes are decrypted and given
    to ``app`` (the channel) as ``data_received``; the client's close_notify or a plain EOF is the
    app's ``eof_received`` (TLS cannot half-close: the connection is closed afterwards); flow
    control is forwarded. As a transport it encrypts the app's writes. ``handshake`` is a future
    for the handshake (None once done): it fails with the error, with ``TimeoutError`` after
    ``timeout`` seconds, or with ``ConnectionResetError`` if the client leaves; the app hears of
    the connection only after the handshake (``connection_made`` if ``greet``, for the implicit
    listener's channels, which are created with the connection).
    """

    __slots__ = (
        "raw",
        "app",
        "obj",
        "inc",
        "out",
        "state",
        "handshake",
        "timer",
        "greet",
        "unsent",
    )

    def __init__(self, ctx: ssl.SSLContext, app: Any, timeout: float, greet: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.raw: Any = None
        self.app = app
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.state = State.HANDSHAKE
        self.handshake: asyncio.Future[None] | None = loop.create_future()
        self.timer: asyncio.TimerHandle | None = loop.call_later(timeout, self._timed_out, timeout)
        self.greet = greet
        self.unsent: list[bytes] | None = None  # written during a TLS 1.2 renegotiation

    @property
    def secure(self) -> bool:
        """The handshake is done (the connection may be closed since)."""
        return self.handshake is None

    def attach(self, raw: Any) -> None:
        """Take over the plain transport ``raw`` (AUTH TLS: after the 234 reply was written)."""
        raw.set_protocol(self)
        self.raw = raw
        raw.resume_reading()  # the handshake needs the client's bytes whatever the app paused

    # ------------------------------------------------------------------ the plain side's events
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self.raw = transport  # the implicit listener: TLS from the first byte

    def data_received(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        self.inc.write(data)
        if self.state is State.HANDSHAKE and not self._shake():
            return
        if self.unsent is not None:
            self._retry_unsent()
        self._read()

    def eof_received(self) -> bool:
        # A FIN without close_notify (a truncated stream): as the loop's SSL protocol does, the
        # app's eof_received, then the plain transport closes (returning False).
        if self.state is State.HANDSHAKE:
            self._fail(ConnectionResetError("connection closed during the TLS handshake"))
        elif self.state is State.OPEN:
            self.state = State.CLOSED
            self.app.eof_received()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = State.CLOSED
        self._stop_timer()
        waiter = self.handshake
        if waiter is not None:
            # Mid-handshake: the app was never told of a secure connection; whoever waits for
            # the handshake releases the session (issue 16.1).
            if not waiter.done():
                waiter.set_exception(
                    exc or ConnectionResetError("connection lost during the TLS handshake")
                )
            return
        app, self.app = self.app, None  # no cycle channel <-> transport left behind
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.secure and self.app is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.secure and self.app is not None:
            self.app.resume_writing()

    # ------------------------------------------------------------------ TLS
    def _shake(self) -> bool:
        """Advance the handshake; True once it is done and the connection open."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as exc:
            self._fail(exc)
            return False
        self._flush()  # the last flight, and the TLS 1.3 session tickets
        self._stop_timer()
        self.state = State.OPEN
        waiter, self.handshake = self.handshake, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.greet:
            self.app.connection_made(self)
        return self.state is State.OPEN

    def issue_ticket(self) -> None:
        """One fresh TLS 1.3 session ticket, which goes out ahead of the next write (OpenSSL
        writes it before the record): the client is about to open a PROT P data connection, which
        resumes with it (``tickets``; under TLS 1.2, and where tickets cannot be issued on
        demand, nothing happens). The caller writes its reply next."""
        if self.state is State.OPEN and self.unsent is None:
            tickets.mint(self.obj)

    def _read(self) -> None:
        """Application data to the app, until OpenSSL needs more bytes."""
        obj = self.obj
        while self.state is State.OPEN:
            try:
                data = obj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            except ssl.SSLError as exc:
                self._fatal(exc)
                return
            if not data:  # the client's close_notify (_ssl returns b"" for it)
                self.app.eof_received()
                self.close()
                return
            self.app.data_received(data)
            if not self.inc.pending and not obj.pending():
                break  # all read: spare OpenSSL a WANT_READ (an exception object per read)
        if self.state is State.OPEN and self.out.pending:
            self._flush()  # post-handshake messages (a TLS 1.3 KeyUpdate's answer)

    def _flush(self) -> None:
        data = self.out.read()
        if data and self.raw is not None:
            self.raw.write(data)

    def _retry_unsent(self) -> None:
        pending, self.unsent = self.unsent, None
        for data in pending or ():
            self.write(data)

    def _timed_out(self, timeout: float) -> None:
        self.timer = None
        if self.state is State.HANDSHAKE:
            self._fail(TimeoutError(f"TLS handshake not done in {timeout:g} s"))

    def _stop_timer(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()

    def _fail(self, exc: BaseException) -> None:
        """The handshake failed: the waiter learns why; the client gets OpenSSL's alert if any."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._stop_timer()
        waiter = self.handshake
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        raw = self.raw
        if raw is None:
            return
        self._flush()
        if raw.get_write_buffer_size():
            raw.abort()  # a client that does not read is not waited for
        else:
            raw.close()

    def _fatal(self, exc: ssl.SSLError) -> None:
        """A TLS error on an open connection (a bad record): the connection is dropped."""
        self.state = State.CLOSED
        if self.raw is not None:
            self.raw.abort()  # connection_lost(None) follows; the app hears of it then

    # ------------------------------------------------------------------ the app's transport
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.state is not State.OPEN:
            return  # before the handshake nothing can be sent; after close, nothing is
        if self.unsent is not None:
            self.unsent.append(bytes(data))
            return
        try:
            self.obj.write(data)
        except ssl.SSLWantReadError:
            # A TLS 1.2 renegotiation is waiting for the client's flight: sent after it.
            self.unsent = [bytes(data)]
        except ssl.SSLError as exc:
            self._fatal(exc)
            return
        self._flush()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS cannot half-close")

    def close(self) -> None:
        """close_notify, then close the plain transport once its buffer is written."""
        if self.state is State.CLOSED:
            return
        if self.state is State.HANDSHAKE:
            self.abort()
            return
        self.state = State.CLOSED
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent ours; the client's is not waited for (the connection is over)
        except (ssl.SSLError, ValueError):
            pass
        self._flush()
        self.raw.close()

    def abort(self) -> None:
        self.state = State.CLOSED
        if self.raw is not None:
            self.raw.abort()
        else:
            self._stop_timer()
            waiter = self.handshake
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionAbortedError("aborted before the connection"))

    def is_closing(self) -> bool:
        return self.state is State.CLOSED or bool(self.raw is None or self.raw.is_closing())

    def get_write_buffer_size(self) -> int:
        pending = sum(len(d) for d in self.unsent) if self.unsent else 0
        return pending + (self.raw.get_write_buffer_size() if self.raw is not None else 0)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.raw.get_write_buffer_limits()  # type: ignore[no-any-return]

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.raw.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self.raw.pause_reading()

    def resume_reading(self) -> None:
        self.raw.resume_reading()

    def is_reading(self) -> bool:
        return bool(self.raw.is_reading())

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.app = protocol

    def get_protocol(self) -> Any:
        return self.app

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        obj = self.obj
        if name == "ssl_object":
            return obj
        if name == "sslcontext":
            return obj.context
        if name == "cipher":
            return obj.cipher()
        if name == "peercert":
            return obj.getpeercert()
        if name == "compression":
            return obj.compression()
        if self.raw is None:
            return default
        return self.raw.get_extra_info(name, default)
