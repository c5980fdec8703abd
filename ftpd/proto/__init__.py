"""The sans-IO FTP protocol core.

Bytes in, replies and IO requests out: framing (``lines``), the command table and its generic check
(``commands``), the command handlers (``handlers``), the session state machines and sequence rules
(``state``), the entry points the IO layer calls (``session``), what the handlers ask of the IO
layer (``requests``), replies and errors. Nothing in this package imports asyncio, socket, ssl or
aiofiles, so all of it is unit-testable without sockets.
"""
