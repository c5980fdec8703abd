"""Start pyftpdlib configured like ftpd for like-for-like benchmarks.

As in pyftpdlib's own benchmark set-up (docs/benchmarks.rst): no connection limits
(``max_cons = 0``, ``max_cons_per_ip = 0``), RLIMIT_NOFILE raised to the hard limit, sendfile on.
One user with full permissions in ROOT; prints ``ready <pid> <port>`` on stdout once listening.

    python bench/pyftpdlib_server.py --host 127.0.0.1 --port 2121 --root DIR \
        --user U --password W --pasv-ports 61000-61999
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the options, configure pyftpdlib and serve until killed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2121)
    p.add_argument("--root", required=True)
    p.add_argument("--user", default="user")
    p.add_argument("--password", default="pass")
    p.add_argument("--pasv-ports", default="61000-61999")
    p.add_argument("--idle-timeout", type=float, default=300.0)
    p.add_argument("--auth-failed-delay", type=float, default=3.0, help="pyftpdlib's default: 3")
    p.add_argument("--max-login-attempts", type=int, default=3)
    p.add_argument("--no-sendfile", action="store_true")
    p.add_argument("--certfile", help="explicit FTPS (TLS_FTPHandler; needs pyOpenSSL)")
    p.add_argument("--keyfile")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="pyftpdlib logs connect, login and transfer lines at info (its default)",
    )
    args = p.parse_args(argv)

    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.log import config_logging
    from pyftpdlib.servers import FTPServer

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # pyftpdlib's own logging set-up (what it does by default, at INFO), which also turns off the
    # costly LogRecord fields it does not print; only the level is ours.
    config_logging(level=getattr(logging, args.log_level.upper()))

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elradfmwMT")

    base: type[FTPHandler] = FTPHandler
    if args.certfile:
        from pyftpdlib.handlers import TLS_FTPHandler

        base = TLS_FTPHandler
        base.certfile = args.certfile
        base.keyfile = args.keyfile

    class Handler(base):  # type: ignore[valid-type,misc]
        pass

    first, last = (int(x) for x in args.pasv_ports.split("-"))
    Handler.authorizer = authorizer
    Handler.passive_ports = range(first, last + 1)
    Handler.timeout = args.idle_timeout
    Handler.auth_failed_timeout = args.auth_failed_delay
    Handler.max_login_attempts = args.max_login_attempts
    Handler.use_sendfile = not args.no_sendfile
    Handler.banner = "pyftpdlib ready."

    server = FTPServer((args.host, args.port), Handler)
    server.max_cons = 0
    server.max_cons_per_ip = 0
    # --port 0: the kernel picks a free port; the caller reads it from this line.
    print(f"ready {os.getpid()} {server.address[1]}", flush=True)
    try:
        server.serve_forever(handle_exit=True)
    finally:
        server.close_all()
    sys.exit(0)


if __name__ == "__main__":
    main()
