"""The parent process: starts the workers, drives the run's phases, merges, samples, displays.

Phases: ``start`` (workers importing; wait for every ``hello``) -> ``establish`` (``begin`` set;
sessions connect) -> ``settle`` (all ``ready``: let the server go idle, then sample its memory)
-> ``run`` (``go`` set; the duration runs in each worker) -> ``final`` (liveness checks, QUIT)
-> finished. A watchdog bounds every phase, so a run always ends by itself; Ctrl-C (or SIGTERM)
sets ``stop``, the workers send what they measured, and the partial report is still printed. A
second Ctrl-C terminates the workers at once.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_mod
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ftpd.load import procstat
from ftpd.load.options import Options, Prepared, make_plans
from ftpd.load.process import worker_main
from ftpd.load.scenarios import PRIMARY_OPS
from ftpd.load.stats import Histogram, Recorder

START_TIMEOUT = 60.0  # seconds for spawned workers to import and report
STOP_GRACE = 5.0  # seconds workers get to report after ``stop``


@dataclass
class WindowSpan:
    """One worker's share of the current progress window, and the time it covers."""

    since_ns: int
    until_ns: int
    run_start_ns: int | None
    run_end_ns: int | None
    run_ops: int = 0  # the scenario's headline operations
    establish: int = 0
    nbytes: int = 0
    intended: int = 0

    def seconds(self, clip_to_run: bool) -> float:
        """Length of the covered span; with ``clip_to_run``, only its part in the run phase."""
        lo, hi = self.since_ns, self.until_ns
        if clip_to_run:
            if self.run_start_ns is not None:
                lo = max(lo, self.run_start_ns)
            if self.run_end_ns is not None:
                hi = min(hi, self.run_end_ns)
        return max(0.0, (hi - lo) / 1e9)


@dataclass
class WorkerState:
    """What the parent knows of one worker."""

    process: Any
    hello: bool = False
    ready: bool = False
    ran: bool = False
    done: bool = False
    sessions: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class Run:
    """One run of a scenario, from spawning the workers to the merged measurements."""

    def __init__(self, opts: Options, prepared: Prepared, display: Any, seed: int) -> None:
        self.opts = opts
        self.prepared = prepared
        self.display = display
        self.seed = seed
        self.total = Recorder()
        self.window = Recorder()
        self.timeline: list[dict[str, Any]] = []
        self.samples: dict[str, procstat.ServerSample] = {}
        self.sample_errors: list[str] = []
        self.marks: dict[str, float] = {}  # phase start times, perf_counter seconds
        self.phase = "start"
        self.interrupted = False
        self.watchdog_fired = False
        self.killed_workers = 0
        self.fatal: list[str] = []
        self.workers: list[WorkerState] = []
        self._signals = 0
        self._first_signal = 0.0
        # Per worker, what its messages since the last tick hold: see ``_account``.
        self._spans: dict[int, WindowSpan] = {}
        self._last_cpu: tuple[float, float] | None = None  # (perf_counter, server CPU seconds)

    # -- signals -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        # A repeat within half a second is the same keypress delivered twice (e.g. to the
        # process group and to the process by `timeout`), not an impatient second Ctrl-C.
        now = time.monotonic()
        if not self._signals or now - self._first_signal > 0.5:
            self._signals += 1
        if self._signals == 1 and not self._first_signal:
            self._first_signal = now
        self.interrupted = True

    # -- sampling ----------------------------------------------------------------------------

    def sample_server(self, name: str) -> procstat.ServerSample | None:
        """Sample the server tree (``--server-pid``) under ``name``; None without a pid."""
        if self.opts.server_pid is None:
            return None
        try:
            s = procstat.sample(self.opts.server_pid)
        except (ProcessLookupError, OSError) as exc:
            self.sample_errors.append(f"{name}: {exc}")
            return None
        self.samples[name] = s
        return s

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> None:
        """Run the workers to the end (or until stopped); measurements end up in ``self``."""
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        begin, go, stop = ctx.Event(), ctx.Event(), ctx.Event()
        plans = make_plans(self.opts, self.prepared, self.seed)
        # Workers inherit a blocked SIGINT and then ignore it, so an early Ctrl-C cannot kill
        # one in the middle of its imports; the parent alone decides how to stop.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for plan in plans:
                p = ctx.Process(
                    target=worker_main,
                    args=(self.opts, plan, q, begin, go, stop),
                    name=f"ftpd-load-{plan.index}",
                    daemon=True,
                )
                p.start()
                self.workers.append(WorkerState(p))
        finally:
            old_int = signal.signal(signal.SIGINT, self._on_signal)
            old_term = signal.signal(signal.SIGTERM, self._on_signal)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        try:
            self._loop(q, begin, go, stop)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
            for w in self.workers:
                w.process.join(timeout=2.0)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(timeout=2.0)
            q.close()
            q.join_thread()

    def _loop(self, q: Any, begin: Any, go: Any, stop: Any) -> None:
        opts = self.opts
        now = time.perf_counter()
        self.marks["start"] = now
        watchdog = now + START_TIMEOUT
        next_tick = now + opts.interval
        settle_until = 0.0
        stop_deadline = 0.0
        while True:
            try:
                self._handle(q.get(timeout=0.05))
                while True:
                    self._handle(q.get_nowait())
            except queue_mod.Empty:
                pass
            now = time.perf_counter()
            for w in self.workers:
                if not w.done and w.process.exitcode is not None:
                    w.done = True
                    w.sessions = 0
                    self.total.error("worker", f"exit{w.process.exitcode}")
            alive = [w for w in self.workers if not w.done]
            if not alive:
                break
            if self.phase == "start" and all(w.hello for w in alive):
                # Held scenarios read the server's memory per session: let it go idle after
                # the set-up's uploads and the workers' start before the baseline.
                self.phase = "baseline"
                held = opts.scenario in ("hold", "mixed") and opts.server_pid is not None
                settle_until = now + (min(opts.settle, 1.0) if held else 0.0)
            if self.phase == "baseline" and now >= settle_until:
                self.phase = "establish"
                self.marks["establish"] = now
                # The baseline is read once the workers run, not before they start: spawned
                # Python processes map the same shared libraries as a Python server, and PSS
                # splits shared pages between all who map them, so the server's PSS drops as
                # workers start (the cause of a negative "memory per session").
                baseline = self.sample_server("establish")
                if baseline is not None:
                    self.samples["before"] = baseline
                watchdog = now + opts.ramp + opts.establish_timeout + opts.timeout + 30.0
                begin.set()
            if self.phase == "establish" and all(w.ready for w in alive):
                self.phase = "settle"
                self.marks["settle"] = now
                settle_until = now + (opts.settle if opts.scenario in ("hold", "mixed") else 0.0)
            if self.phase == "settle" and now >= settle_until:
                self.phase = "run"
                self.marks["run"] = now
                self.sample_server("established")
                watchdog = now + opts.duration + 3 * opts.timeout + 30.0
                go.set()
            if self.phase == "run" and all(w.ran for w in alive):
                self.phase = "final"
                self.marks["final"] = now
                self.sample_server("ran")
            if (self.interrupted or now > watchdog) and not stop.is_set():
                self.watchdog_fired = not self.interrupted
                stop.set()
                stop_deadline = now + STOP_GRACE
                self.marks.setdefault("stop", now)
            if stop.is_set() and (now > stop_deadline or self._signals > 1):
                for w in alive:
                    w.process.kill()
                    w.done = True
                    self.killed_workers += 1
                    self.total.error("worker", "killed")
                break
            if now >= next_tick:
                self.tick(now)
                next_tick = max(next_tick + opts.interval, now + opts.interval / 2)
        self.marks["end"] = time.perf_counter()
        if "ran" not in self.samples:
            self.sample_server("ran")
        self.tick(self.marks["end"])

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind, idx = msg[0], msg[1]
        w = self.workers[idx]
        if kind == "tick":
            rec = Recorder.from_wire(msg[2])
            self.total.merge(rec)
            self.window.merge(rec)
            w.sessions = msg[3]["sessions"]
            self._account(idx, rec, msg[3])
        elif kind == "hello":
            w.hello = True
        elif kind == "ready":
            w.ready = True
            w.info.update(msg[2])
        elif kind == "ran":
            w.ran = True
        elif kind == "done":
            rec = Recorder.from_wire(msg[2])
            self.total.merge(rec)
            self.window.merge(rec)
            w.info.update(msg[3])
            w.done = w.ready = w.ran = w.hello = True
            w.sessions = 0
        elif kind == "fatal":
            text = msg[2].rstrip()
            last = text.splitlines()[-1] if text else "unknown"
            self.total.error("internal", last.split(":", 1)[0])
            self.fatal.append(text)
            print(f"ftpd-load: worker {idx} hit a bug:\n{text}", file=sys.stderr)

    # -- progress ----------------------------------------------------------------------------

    def _account(self, idx: int, rec: Recorder, info: dict[str, Any]) -> None:
        """Add a worker's tick to its window span (rates divide by the time the data covers)."""
        span = self._spans.get(idx)
        if span is None:
            span = self._spans[idx] = WindowSpan(
                info["since_ns"], info["until_ns"], info["run_start_ns"], info["run_end_ns"]
            )
        span.until_ns = max(span.until_ns, info["until_ns"])
        span.run_start_ns = info["run_start_ns"]
        span.run_end_ns = info["run_end_ns"]
        span.run_ops += sum(rec.counts.get(op, 0) for op in PRIMARY_OPS[self.opts.scenario])
        span.establish += rec.counts.get("establish", 0)
        span.nbytes += sum(rec.bytes.values())
        span.intended += rec.intended

    def primary_histogram(self, rec: Recorder, service: bool = False) -> Histogram:
        """Merged latency (or, with ``service``, service time) of the headline operations."""
        hist = Histogram()
        source = rec.service if service else rec.latency
        for op in PRIMARY_OPS[self.opts.scenario]:
            if op in source:
                hist.merge(source[op])
        return hist

    def tick(self, now: float) -> None:
        """Close the current window: append a timeline point and update the display.

        Each worker's counts are divided by the time its reports covered (clipped to its run
        phase for the headline rate), then summed: a last, partial interval is divided by its
        own length, and the final NOOPs and QUITs are not part of the throughput.
        """
        win, self.window = self.window, Recorder()
        spans, self._spans = self._spans, {}
        ops = establish = mb = intended = 0.0
        for span in spans.values():
            run_s = span.seconds(clip_to_run=True)
            all_s = span.seconds(clip_to_run=False)
            if span.run_ops and run_s > 0:
                ops += span.run_ops / run_s
            if span.intended and run_s > 0:
                intended += span.intended / run_s
            if span.establish and all_s > 0:
                establish += span.establish / all_s
            if span.nbytes and all_s > 0:
                mb += span.nbytes / all_s / 1e6
        hist = self.primary_histogram(win)
        point: dict[str, Any] = {
            "t": round(now - self.marks["start"], 3),
            "phase": self.phase,
            "sessions": sum(w.sessions for w in self.workers),
            "ops_per_s": round(ops, 2),
            "establish_per_s": round(establish, 2),
            "errors": self.total.errors_total(),
            "errors_by_kind": dict(sorted(win.errors.items())),
            "mb_per_s": round(mb, 3),
        }
        if hist.count:
            point.update(
                p50_ms=round(hist.percentile(50) / 1e6, 4),
                p90_ms=round(hist.percentile(90) / 1e6, 4),
                p99_ms=round(hist.percentile(99) / 1e6, 4),
                max_ms=round(hist.max / 1e6, 4),
            )
        if self.opts.rate:
            point["intended_per_s"] = round(intended, 2)
            point["missed"] = win.missed
            service = self.primary_histogram(win, service=True)
            if service.count:
                point["service_p99_ms"] = round(service.percentile(99) / 1e6, 4)
        if self.opts.server_pid is not None:
            s = self.sample_server("tick")
            if s is not None:
                point["pss_kib"] = s.pss_kib
                point["rss_kib"] = s.rss_kib
                point["fds"] = s.fds
                if self._last_cpu is not None and now > self._last_cpu[0]:
                    busy = s.cpu_seconds - self._last_cpu[1]
                    point["cpu_pct"] = round(100 * busy / (now - self._last_cpu[0]), 1)
                self._last_cpu = (now, s.cpu_seconds)
        self.timeline.append(point)
        if self.display is not None:
            so_far = self.primary_histogram(self.total)
            if not so_far.count and "establish" in self.total.latency:
                so_far = self.total.latency["establish"]
            self.display.update(point, so_far.percentile(99) / 1e6 if so_far.count else None)
