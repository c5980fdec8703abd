"""One run from start to finish: prepare the server, run, clean up, summarise, write files.

Shared by a single run (``cli``) and by ``compare``, which makes several.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from typing import Any

from ftpd.load.options import Options
from ftpd.load.target import display_url


def now() -> str:
    """The current UTC time, ISO-8601 with milliseconds (the result's ``started``/``ended``)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def write_outputs(result: dict[str, Any], opts: Options) -> None:
    """The files a run asked for: ``--json``, ``--report``, ``--plot``."""
    from ftpd.load.report import plot, write_json

    if opts.json_path:
        write_json(result, opts.json_path)
    if opts.report_path:
        from ftpd.load.htmlreport import write_report

        write_report(result, opts.report_path)
        print(f"ftpd-load: report written to {opts.report_path}", file=sys.stderr)
    if opts.plot_path:
        plot(result, opts.plot_path)


def run_one(opts: Options) -> tuple[int, dict[str, Any] | None]:
    """Prepare the server, run the scenario, clean up, print the summary.

    Returns the exit status and the result (None when set-up failed or was interrupted).
    """
    from ftpd.load.display import RichProgress, make_progress, print_summary
    from ftpd.load.prepare import SetupError, cleanup, prepare
    from ftpd.load.report import build_result
    from ftpd.load.runner import Run
    from ftpd.load.worker import loop_factory

    started = now()
    factory = loop_factory(opts.loop)
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            prepared = runner.run(prepare(opts))
    except SetupError as exc:
        print(f"ftpd-load: {exc}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt:
        print("ftpd-load: interrupted during set-up", file=sys.stderr)
        return 130, None
    url = display_url(opts.host, opts.port, opts.user, opts.tls, opts.implicit_tls)
    progress = make_progress(opts.progress, f"ftpd-load {opts.scenario} -> {url}")
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
    result = build_result(the_run, prepared, started, now(), problems)
    to_stdout = opts.json_path == "-"
    print_summary(
        result,
        use_rich=isinstance(progress, RichProgress) and not to_stdout,
        stream=sys.stderr if to_stdout else sys.stdout,
    )
    if the_run.interrupted:
        return 130, result
    return (1 if result["errors_total"] else 0), result
