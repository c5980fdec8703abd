"""The sans-IO FTP protocol core.

Bytes in, replies and IO requests out: framing (``lines``), the command table (``commands``), the
session state machines (``state``), the per-session logic (``session``), replies and errors. Nothing in
this package imports asyncio, socket, ssl or aiofiles, so all of it is unit-testable without sockets.
"""
