"""Shared test helpers: one of each, used by every test folder (see docs/TESTING.md).

- ``client``: ``Ctl``, the raw control-connection client (strict RFC 959 reply parsing), and the
  socket helpers ``recv_all``, ``send_all_and_close``, ``abort_socket``.
- ``waits``: ``wait_until`` (poll a condition with a deadline) and ``wait_log``: the replacement
  for ``time.sleep`` used as synchronisation.
- ``server``: ``start_ftpd`` / ``FtpdProcess`` (a real ``python -m ftpd`` on a loopback port) and
  ``PasvBlocks``, the passive port ranges allocated free per server.
- ``proc``: figures of a process from ``/proc`` (open fds, PSS, CPU seconds).
- ``driver``: ``drive``, which runs one command line through the sans-IO ``Session``, for the
  protocol unit tests.
- ``env``: ``clients_required`` and ``require_ipv6``: skips that turn into failures in CI.
- ``tlslayer``: ``Server`` and ``App`` around ftpd's control TLS layer on loopback, the loops it
  runs on (``LOOPS``, ``runner``) and blocking TLS clients, for the control-TLS and ticket tests.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so ``from support.client
import Ctl`` works from every folder.
"""
