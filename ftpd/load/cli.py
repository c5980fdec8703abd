"""Command line of ``ftpd-load`` (and ``python -m ftpd.load``): parse, prepare, run, report.

Exit status: 0 the run completed without errors, 1 it completed and counted errors, 2 bad usage
or the server could not be prepared, 130 interrupted (the partial report is still printed).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any

from ftpd.load.limits import PROCS_AUTO, check_fd_budget, resolve_procs
from ftpd.load.options import (
    OPEN_MODEL_SCENARIOS,
    Options,
    parse_addresses,
    parse_duration,
    parse_size,
    parse_weights,
)
from ftpd.load.target import (
    ANONYMOUS_PASSWORD,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_USER,
    Target,
    parse_url,
)

DEFAULT_BIG = "64M"
DEFAULT_SMALL = "4K"


def _typed(fn: Any, name: str) -> Any:
    def convert(text: str) -> Any:
        try:
            return fn(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


_size = _typed(parse_size, "size")
_duration = _typed(parse_duration, "duration")
_addresses = _typed(parse_addresses, "addresses")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def _procs(text: str) -> int:
    if text == "auto":
        return PROCS_AUTO
    return _positive_int(text)


def _rate(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def _url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help="the server, as ftpd prints it: ftp://user:password@host:port/ (ftps:// implicit "
        f"TLS, ftpes:// explicit); default ftp://{DEFAULT_USER}@{DEFAULT_HOST}:{DEFAULT_PORT}/",
    )


def _open_model(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("open model (latency from each intended start)")
    g.add_argument(
        "--rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help=f"start R {what} per second in all, whatever the server's pace",
    )
    g.add_argument(
        "--arrivals",
        choices=("constant", "poisson"),
        default="constant",
        help="with --rate: evenly spaced starts, or a Poisson process (default constant)",
    )


def _sample(text: str) -> int:
    return -1 if text == "all" else int(text)


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("server and login (flags override what the URL says)")
    g.add_argument("--host", help=f"server address or name (default {DEFAULT_HOST})")
    g.add_argument("--port", type=int, help=f"control port (default {DEFAULT_PORT}, as ftpd)")
    g.add_argument("--user", help=f"user name (default {DEFAULT_USER}, as ftpd)")
    g.add_argument("--password", default=None, help="password (or in the URL)")
    g.add_argument("--password-env", metavar="VAR", help="read the password from this variable")
    g.add_argument("--tls", action="store_true", help="explicit FTPS: AUTH TLS, PBSZ 0, PROT P")
    g.add_argument("--insecure", action="store_true", help="with --tls: skip certificate checks")
    g.add_argument("--cafile", help="with --tls: trust the CA certificates in this PEM file")
    g = p.add_argument_group("load shape")
    g.add_argument(
        "--procs",
        type=_procs,
        default=1,
        help="worker processes, or 'auto': one per core, more if the fd limit needs (default 1)",
    )
    g.add_argument(
        "--source-addresses",
        type=_addresses,
        default=[],
        metavar="A-B",
        help="client source addresses, round-robin (e.g. 127.0.0.1-127.0.0.8)",
    )
    g.add_argument("--duration", type=_duration, default=10.0, help="seconds to run (default 10)")
    g.add_argument("--ramp", type=_duration, default=0.0, help="spread session starts over S s")
    g.add_argument("--count", type=int, default=0, help="stop after this many operations in total")
    g.add_argument("--timeout", type=_duration, default=30.0, help="per-operation timeout (30)")
    g.add_argument(
        "--establish-timeout",
        type=_duration,
        default=120.0,
        help="give up opening sessions after S s (default 120)",
    )
    g.add_argument(
        "--connect-concurrency",
        type=_positive_int,
        default=24,
        help="connections being opened at once, over all processes (default 24)",
    )
    g.add_argument("--epsv", action="store_true", help="EPSV instead of PASV (always on IPv6)")
    g.add_argument("--seed", type=int, help="random seed (think times, choices)")
    g.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    g = p.add_argument_group("output")
    g.add_argument(
        "--json", dest="json_path", metavar="FILE", help="write the result as JSON ('-': stdout)"
    )
    g.add_argument(
        "--report",
        dest="report_path",
        metavar="FILE.html",
        help="write a self-contained HTML report with charts (opens offline)",
    )
    g.add_argument(
        "--plot", dest="plot_path", metavar="FILE.png", help="plot the timeline (matplotlib)"
    )
    g.add_argument("--server-pid", type=int, help="sample this server's memory, CPU and fds")
    g.add_argument(
        "--progress", choices=("auto", "rich", "plain", "none"), default="auto", help="live display"
    )
    g.add_argument(
        "--interval", type=_duration, default=1.0, help="progress interval (default 1 s)"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per scenario."""
    common = [_common()]
    parser = argparse.ArgumentParser(
        prog="ftpd-load",
        description="Load and stress tool for FTP servers (its own asyncio client).",
        epilog="example: ftpd-load mixed 50 ftp://user:PASSWORD@127.0.0.1:2121/ --rate 100 "
        "--report run.html   (the URL as ftpd prints it; docs/STRESS.md has the rest)",
    )
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")

    p = sub.add_parser("hold", parents=common, help="hold N idle sessions; NOOP latency")
    p.add_argument("sessions", type=_positive_int, metavar="N")
    _url(p)
    p.add_argument(
        "--noop-sample", type=_sample, default=100, help="sessions sending NOOP, or 'all'"
    )
    p.add_argument("--noop-interval", type=_duration, default=1.0, help="seconds between NOOPs")
    p.add_argument("--settle", type=_duration, default=1.0, help="idle wait before sampling memory")

    p = sub.add_parser("logins", parents=common, help="connect+USER+PASS+QUIT loops")
    _url(p)
    p.add_argument(
        "-c",
        "--concurrency",
        dest="sessions",
        type=_positive_int,
        default=10,
        help="login loops (with --rate: logins in flight at most); default 10",
    )
    _open_model(p, "logins")

    p = sub.add_parser("retr", parents=common, help="big-file download throughput")
    _url(p)
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=1)
    p.add_argument("--file", help="server path to download (default: upload --size first)")
    p.add_argument("--size", type=_size, default=DEFAULT_BIG, help=f"default {DEFAULT_BIG}")

    p = sub.add_parser("stor", parents=common, help="big-file upload throughput")
    _url(p)
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=1)
    p.add_argument("--size", type=_size, default=DEFAULT_BIG, help=f"default {DEFAULT_BIG}")
    p.add_argument("--keep", action="store_true", help="leave the uploaded files on the server")

    p = sub.add_parser("small", parents=common, help="small-file transfers per second")
    _url(p)
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=10)
    p.add_argument("--file", help="server path to download (default: upload --size first)")
    p.add_argument("--size", type=_size, default=DEFAULT_SMALL, help=f"default {DEFAULT_SMALL}")
    p.add_argument("--mix", default="retr=1,stor=0", help="weights, e.g. retr=3,stor=1")
    p.add_argument("--keep", action="store_true", help="leave the uploaded files on the server")
    _open_model(p, "transfers")

    p = sub.add_parser("mixed", parents=common, help="N sessions behaving like users")
    p.add_argument("sessions", type=_positive_int, metavar="N")
    _url(p)
    p.add_argument(
        "--think",
        type=_duration,
        default=None,
        help="mean think time (default 10 s; not with --rate)",
    )
    p.add_argument("--mix", default="list=1,retr=1,stor=1", help="weights of list, retr, stor")
    p.add_argument("--mlsd", action="store_true", help="MLSD instead of LIST")
    p.add_argument(
        "--size", type=_size, default=DEFAULT_SMALL, help=f"file size (default {DEFAULT_SMALL})"
    )
    p.add_argument("--list-files", type=int, default=20, help="entries in the listed directory")
    p.add_argument("--settle", type=_duration, default=1.0, help="idle wait before sampling memory")
    _open_model(p, "actions")

    p = sub.add_parser(
        "compare",
        help="the same scenario against several servers, one after another",
        description="Run one scenario against two or more servers (URLs), one after another, "
        "and report them side by side with ratios to the first. --json and --report describe "
        "the comparison; --server-pids P1,P2 samples each server in turn.",
        epilog="example: ftpd-load compare ftp://user:pw@127.0.0.1:2121/ "
        "ftp://user:pw@127.0.0.1:2122/ mixed 50 --rate 100 --report compare.html",
    )
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="URL URL [URL ...] SCENARIO [OPTIONS]")
    return parser


def options_from_args(args: argparse.Namespace, url: str | None = None) -> Options:
    """Validate the parsed arguments into Options; raises ValueError with a clear message.

    ``url`` (``compare``) stands in for the positional URL. Flags override what the URL says.
    """
    url = url if url is not None else getattr(args, "url", None)
    target = parse_url(url) if url else Target()
    password = args.password if args.password is not None else target.password
    if args.password_env:
        if args.password_env not in os.environ:
            raise ValueError(f"--password-env {args.password_env}: variable not set")
        password = os.environ[args.password_env]
    opts = Options(scenario=args.scenario)
    for name in Options.__slots__:  # type: ignore[attr-defined]
        if name not in _FROM_TARGET and hasattr(args, name):
            setattr(opts, name, getattr(args, name))
    opts.host = args.host or target.host or DEFAULT_HOST
    opts.port = args.port or target.port or DEFAULT_PORT
    opts.user = args.user or target.user or DEFAULT_USER
    opts.tls = args.tls or target.tls or target.implicit_tls
    opts.implicit_tls = target.implicit_tls
    if password is None:
        if opts.user not in ("anonymous", "ftp"):
            raise ValueError(
                f"no password for {opts.user}: give the URL ftpd printed on start-up "
                f"(ftp://{opts.user}:PASSWORD@{opts.host}:{opts.port}/), or --password-env VAR"
            )
        password = ANONYMOUS_PASSWORD
    opts.password = password
    if args.scenario == "small":
        opts.mix = parse_weights(args.mix, ("retr", "stor"))
    elif args.scenario == "mixed":
        opts.mix = parse_weights(args.mix, ("list", "retr", "stor"))
        if args.think is not None and opts.rate:
            raise ValueError("--think is for the closed model; with --rate the schedule decides")
        opts.think = 10.0 if args.think is None else args.think
    if opts.rate and args.scenario not in OPEN_MODEL_SCENARIOS:
        raise ValueError(f"--rate applies to {', '.join(OPEN_MODEL_SCENARIOS)} only")
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(1 << 31)
    if opts.duration <= 0 or opts.timeout <= 0 or opts.interval <= 0:
        raise ValueError("--duration, --timeout and --interval must be > 0")
    if opts.count < 0:
        raise ValueError("--count must be >= 0")
    if opts.server_pid is not None and not os.path.exists(f"/proc/{opts.server_pid}/stat"):
        raise ValueError(f"--server-pid {opts.server_pid}: no such process (or no /proc)")
    if opts.cafile and not os.path.exists(opts.cafile):
        raise ValueError(f"--cafile {opts.cafile}: no such file")
    resolve_procs(opts)
    return opts


# Options set from the URL and flags together, or parsed specially, rather than copied.
_FROM_TARGET = ("scenario", "password", "mix", "host", "port", "user", "think", "tls")


def main(argv: list[str] | None = None) -> int:
    """Run ``ftpd-load`` with ``argv`` (default: sys.argv[1:]); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scenario == "compare":
        from ftpd.load.compare import compare_main

        return compare_main(parser, args.args, options_from_args)
    try:
        opts = options_from_args(args)
        check_fd_budget(opts)
    except ValueError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2
    if opts.plot_path:
        from ftpd.load.report import check_plot_available

        check_plot_available()
    from ftpd.load.execute import run_one, write_outputs

    rc, result = run_one(opts)
    if result is not None:
        write_outputs(result, opts)
    return rc
