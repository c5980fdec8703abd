"""The entry point of a worker process: a fresh event loop running one scenario on one plan.

Kept apart from ``worker`` (the machinery) and ``scenarios`` (what sessions do), which import one
another in one direction only: scenarios use the Worker; this module puts the two together.
"""

from __future__ import annotations

import asyncio
import signal
from multiprocessing.synchronize import Event
from typing import Any

from ftpd.load.limits import raise_nofile_limit
from ftpd.load.options import Options, Plan
from ftpd.load.scenarios import SCENARIOS
from ftpd.load.worker import Worker, loop_factory


def worker_main(
    opts: Options, plan: Plan, queue: Any, begin: Event, go: Event, stop: Event
) -> None:
    """Entry point of a worker process (spawned)."""
    # Ctrl-C goes to the whole process group; only the parent acts on it and then sets ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    raise_nofile_limit()
    with asyncio.Runner(loop_factory=loop_factory(opts.loop)) as runner:
        runner.run(Worker(opts, plan, queue, begin, go, stop).main(SCENARIOS[opts.scenario]))
