"""``ftpd-load compare URL URL [URL ...] SCENARIO [OPTIONS]``: one scenario, several servers.

The question a user choosing a server asks. Each server gets the same scenario with the same
options, one after another (never at once: they would share the client's and the machine's
cores), then one table puts them side by side with each figure's ratio to the first server.
``--json`` and ``--report`` describe the whole comparison; ``--server-pids P1,P2,...`` samples
each server's process in turn.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ftpd.load.comparison import render_text
from ftpd.load.execute import now, run_one, write_outputs
from ftpd.load.limits import check_fd_budget
from ftpd.load.options import Options

MakeOptions = Callable[[argparse.Namespace, str], Options]


def _split(argv: list[str]) -> tuple[list[str], list[int], list[str]]:
    """URLs (leading arguments with ``://``), ``--server-pids`` and the scenario's arguments."""
    urls: list[str] = []
    i = 0
    while i < len(argv) and "://" in argv[i]:
        urls.append(argv[i])
        i += 1
    rest = list(argv[i:])
    pids: list[int] = []
    for flag in ("--server-pids",):
        if flag in rest:
            j = rest.index(flag)
            if j + 1 >= len(rest):
                raise ValueError(f"{flag} needs a value: P1,P2,...")
            try:
                pids = [int(p) for p in rest[j + 1].split(",") if p.strip()]
            except ValueError:
                raise ValueError(f"{flag}: not a list of process ids: {rest[j + 1]!r}") from None
            del rest[j : j + 2]
    return urls, pids, rest


def compare_main(
    parser: argparse.ArgumentParser, argv: list[str], options_from_args: MakeOptions
) -> int:
    """Run the comparison; the exit status is the worst of the runs' (0, 1, 2 or 130).

    ``parser`` parses the scenario's arguments and ``options_from_args`` turns them, with one
    URL, into the options of one run (both from ``cli``).
    """
    try:
        urls, pids, rest = _split(argv)
        if len(urls) < 2:
            raise ValueError(
                "compare needs two or more server URLs, then the scenario: ftpd-load compare "
                "ftp://u:p@127.0.0.1:2121/ ftp://u:p@127.0.0.1:2122/ mixed 50 --rate 100"
            )
        if not rest or rest[0] == "compare":
            raise ValueError("compare: give the scenario after the URLs (e.g. mixed 50)")
        if pids and len(pids) != len(urls):
            raise ValueError(f"--server-pids: {len(pids)} ids for {len(urls)} servers")
    except ValueError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(rest)
    try:
        if getattr(args, "url", None):
            raise ValueError("compare: put every URL before the scenario, none after it")
        if args.plot_path:
            raise ValueError("compare: --plot draws one run; use --report FILE.html")
        if args.server_pid is not None:
            raise ValueError("compare: use --server-pids P1,P2,... (one per server)")
        all_opts = [options_from_args(args, url) for url in urls]
        for i, opts in enumerate(all_opts):
            opts.server_pid = pids[i] if pids else None
            check_fd_budget(opts)
    except ValueError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2
    out = all_opts[0]
    json_path, report_path = out.json_path, out.report_path
    started = now()
    results: list[dict[str, Any]] = []
    worst = 0
    for i, opts in enumerate(all_opts):
        opts.json_path = opts.report_path = None
        print(f"\n=== [{i + 1}/{len(urls)}] {urls[i].split('@')[-1]}", flush=True)
        rc, result = run_one(opts)
        worst = max(worst, rc)
        if result is None or rc == 130:
            return rc  # set-up failed or interrupted: no comparison to make
        results.append(result)
    comparison = {
        "tool": "ftpd-load",
        "schema": 1,
        "started": started,
        "ended": now(),
        "compare": results,
    }
    print(f"\n{render_text(results)}", file=sys.stderr if json_path == "-" else sys.stdout)
    out.json_path, out.report_path = json_path, report_path
    write_outputs(comparison, out)
    return worst
