"""Command line of ``ftpd-load`` (and ``python -m ftpd.load``): parse, prepare, run, report.

Exit status: 0 the run completed without errors, 1 it completed and counted errors, 2 bad usage
or the server could not be prepared, 130 interrupted (the partial report is still printed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import sys
from typing import Any

from ftpd.load.options import (
    Options,
    parse_addresses,
    parse_duration,
    parse_size,
    parse_weights,
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


def _sample(text: str) -> int:
    return -1 if text == "all" else int(text)


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("server and login")
    g.add_argument("--host", default="127.0.0.1", help="server address or name (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=21, help="control port (default 21)")
    g.add_argument("--user", default="anonymous", help="user name (default anonymous)")
    g.add_argument("--password", default=None, help="password (default ftpd-load@)")
    g.add_argument("--password-env", metavar="VAR", help="read the password from this variable")
    g.add_argument("--tls", action="store_true", help="explicit FTPS: AUTH TLS, PBSZ 0, PROT P")
    g.add_argument("--insecure", action="store_true", help="with --tls: skip certificate checks")
    g.add_argument("--cafile", help="with --tls: trust the CA certificates in this PEM file")
    g = p.add_argument_group("load shape")
    g.add_argument("--procs", type=_positive_int, default=1, help="worker processes (default 1)")
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
    )
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")

    p = sub.add_parser("hold", parents=common, help="hold N idle sessions; NOOP latency")
    p.add_argument("sessions", type=_positive_int, metavar="N")
    p.add_argument(
        "--noop-sample", type=_sample, default=100, help="sessions sending NOOP, or 'all'"
    )
    p.add_argument("--noop-interval", type=_duration, default=1.0, help="seconds between NOOPs")
    p.add_argument("--settle", type=_duration, default=1.0, help="idle wait before sampling memory")

    p = sub.add_parser("logins", parents=common, help="connect+USER+PASS+QUIT loops")
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=10)

    p = sub.add_parser("retr", parents=common, help="big-file download throughput")
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=1)
    p.add_argument("--file", help="server path to download (default: upload --size first)")
    p.add_argument("--size", type=_size, default=DEFAULT_BIG, help=f"default {DEFAULT_BIG}")

    p = sub.add_parser("stor", parents=common, help="big-file upload throughput")
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=1)
    p.add_argument("--size", type=_size, default=DEFAULT_BIG, help=f"default {DEFAULT_BIG}")
    p.add_argument("--keep", action="store_true", help="leave the uploaded files on the server")

    p = sub.add_parser("small", parents=common, help="small-file transfers per second")
    p.add_argument("-c", "--concurrency", dest="sessions", type=_positive_int, default=10)
    p.add_argument("--file", help="server path to download (default: upload --size first)")
    p.add_argument("--size", type=_size, default=DEFAULT_SMALL, help=f"default {DEFAULT_SMALL}")
    p.add_argument("--mix", default="retr=1,stor=0", help="weights, e.g. retr=3,stor=1")
    p.add_argument("--keep", action="store_true", help="leave the uploaded files on the server")

    p = sub.add_parser("mixed", parents=common, help="N sessions behaving like users")
    p.add_argument("sessions", type=_positive_int, metavar="N")
    p.add_argument("--think", type=_duration, default=10.0, help="mean think time (default 10 s)")
    p.add_argument("--mix", default="list=1,retr=1,stor=1", help="weights of list, retr, stor")
    p.add_argument("--mlsd", action="store_true", help="MLSD instead of LIST")
    p.add_argument(
        "--size", type=_size, default=DEFAULT_SMALL, help=f"file size (default {DEFAULT_SMALL})"
    )
    p.add_argument("--list-files", type=int, default=20, help="entries in the listed directory")
    p.add_argument("--settle", type=_duration, default=1.0, help="idle wait before sampling memory")
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    """Validate the parsed arguments into Options; raises ValueError with a clear message."""
    password = args.password
    if args.password_env:
        if args.password_env not in os.environ:
            raise ValueError(f"--password-env {args.password_env}: variable not set")
        password = os.environ[args.password_env]
    opts = Options(scenario=args.scenario)
    for name in Options.__slots__:  # type: ignore[attr-defined]
        if name not in ("scenario", "password", "mix") and hasattr(args, name):
            setattr(opts, name, getattr(args, name))
    if password is not None:
        opts.password = password
    if args.scenario == "small":
        opts.mix = parse_weights(args.mix, ("retr", "stor"))
    elif args.scenario == "mixed":
        opts.mix = parse_weights(args.mix, ("list", "retr", "stor"))
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
    return opts


def check_fd_budget(opts: Options) -> None:
    """Refuse a run that cannot fit the per-process fd limit, suggesting --procs."""
    from ftpd.load.worker import raise_nofile_limit

    limit = raise_nofile_limit()
    per_session = 1 if opts.scenario in ("hold", "logins") else 2  # control + data
    procs = max(1, min(opts.procs, opts.sessions))
    need = -(-opts.sessions // procs) * per_session + 64
    if need > limit:
        enough = -(-opts.sessions * per_session // (limit - 64))
        raise ValueError(
            f"{opts.sessions} sessions need about {need} fds per process with --procs {procs}, "
            f"but a process may open {limit}: use --procs {enough} or more"
        )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def main(argv: list[str] | None = None) -> int:
    """Run ``ftpd-load`` with ``argv`` (default: sys.argv[1:]); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        opts = options_from_args(args)
        check_fd_budget(opts)
    except ValueError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2
    if opts.plot_path:
        from ftpd.load.report import check_plot_available

        check_plot_available()
    return run(opts)


def run(opts: Options) -> int:
    """Prepare the server, run the scenario, clean up and report."""
    from ftpd.load.display import RichProgress, make_progress, print_summary
    from ftpd.load.prepare import SetupError, cleanup, prepare
    from ftpd.load.report import build_result, plot, write_json
    from ftpd.load.runner import Run
    from ftpd.load.worker import loop_factory

    started = _now()
    factory = loop_factory(opts.loop)
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            prepared = runner.run(prepare(opts))
    except SetupError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ftpd-load: interrupted during set-up", file=sys.stderr)
        return 130
    progress = make_progress(opts.progress, f"ftpd-load {opts.scenario} -> {opts.host}:{opts.port}")
    the_run = Run(opts, prepared, progress, opts.seed or 0)
    if progress is not None:
        progress.start()
    try:
        the_run.execute()
    finally:
        if progress is not None:
            progress.stop()
    with asyncio.Runner(loop_factory=factory) as runner:
        problems = runner.run(cleanup(opts, prepared))
    for problem in problems:
        print(f"ftpd-load: clean-up: {problem}", file=sys.stderr)
    result = build_result(the_run, prepared, started, _now(), problems)
    to_stdout = opts.json_path == "-"
    print_summary(
        result,
        use_rich=isinstance(progress, RichProgress) and not to_stdout,
        stream=sys.stderr if to_stdout else sys.stdout,
    )
    if opts.json_path:
        write_json(result, opts.json_path)
    if opts.plot_path:
        plot(result, opts.plot_path)
    if the_run.interrupted:
        return 130
    return 1 if result["errors_total"] else 0
