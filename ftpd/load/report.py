"""The result of a run as one JSON-ready dict, and the optional plot of its timeline.

Rates divide by the measured phase only (from the first worker's ``go`` to the last worker's end
of run, both read from the shared monotonic clock), never by set-up or clean-up time.
"""

from __future__ import annotations

import json
from typing import Any

from ftpd.load.options import Prepared
from ftpd.load.runner import Run
from ftpd.load.scenarios import PRIMARY_OPS
from ftpd.load.target import display_url

SCHEMA_VERSION = 1
_HELD = ("hold", "mixed")  # scenarios whose sessions are many and idle: memory per session
_NOT_RUN_OPS = ("establish", "final_noop", "quit", "worker", "internal")


def _span_s(run: Run) -> float:
    infos = [w.info for w in run.workers]
    starts = [i["run_start_ns"] for i in infos if "run_start_ns" in i]
    if not starts:
        return 0.0
    fallback_ns = int(run.marks.get("stop", run.marks.get("end", 0.0)) * 1e9)
    ends = [i.get("run_end_ns", fallback_ns) for i in infos if "run_start_ns" in i]
    return max(0.0, (max(ends) - min(starts)) / 1e9)


def _sessions(run: Run) -> dict[str, Any]:
    infos = [w.info for w in run.workers]
    out: dict[str, Any] = {
        "target": run.opts.sessions,
        "established": sum(i.get("established", 0) for i in infos),
        "alive_at_end": None,
        "establish_s": None,
    }
    alive = [i.get("alive") for i in infos]
    if infos and all(a is not None for a in alive):
        out["alive_at_end"] = sum(alive)  # type: ignore[arg-type]
    firsts = [i["establish_first_ns"] for i in infos if "establish_first_ns" in i]
    lasts = [i["establish_last_ns"] for i in infos if "establish_last_ns" in i]
    if firsts and lasts:
        out["establish_s"] = round((max(lasts) - min(firsts)) / 1e9, 4)
    return out


def _server(run: Run, established: int, run_ops: int) -> dict[str, Any] | None:
    if run.opts.server_pid is None:
        return None
    s = run.samples
    before, begin, est, ran = (s.get(k) for k in ("before", "establish", "established", "ran"))
    out: dict[str, Any] = {"pid": run.opts.server_pid, "sample_errors": run.sample_errors}
    if before is not None:
        out.update(
            pss_kib_before=before.pss_kib, rss_kib_before=before.rss_kib, fds_before=before.fds
        )
    if est is not None:
        out.update(pss_kib_after=est.pss_kib, rss_kib_after=est.rss_kib, fds_after=est.fds)
        out["processes"] = len(est.pids)
    if ran is not None:
        out.update(pss_kib_end=ran.pss_kib, fds_end=ran.fds)
    if before is not None and est is not None and established and run.opts.scenario in _HELD:
        out["per_session_kib"] = round((est.pss_kib - before.pss_kib) / established, 2)
        out["per_session_rss_kib"] = round((est.rss_kib - before.rss_kib) / established, 2)
        if ran is not None:
            # After the run (before the final NOOPs and QUIT): what the work left behind.
            out["per_session_kib_end"] = round((ran.pss_kib - before.pss_kib) / established, 2)
    if begin is not None and est is not None and established:
        cpu = est.cpu_seconds - begin.cpu_seconds
        out["cpu_seconds_establish"] = round(cpu, 3)
        out["cpu_us_per_session"] = round(cpu * 1e6 / established, 1)
    if est is not None and ran is not None:
        cpu = ran.cpu_seconds - est.cpu_seconds
        out["cpu_seconds"] = round(cpu, 3)
        out["cpu_us_per_op"] = round(cpu * 1e6 / run_ops, 1) if run_ops else None
    return out


def build_result(
    run: Run, prepared: Prepared, started: str, ended: str, cleanup_problems: list[str]
) -> dict[str, Any]:
    """Everything measured, in the documented JSON shape (see docs/STRESS.md)."""
    opts = run.opts
    total = run.total
    span = _span_s(run)
    sessions = _sessions(run)
    primary = PRIMARY_OPS[opts.scenario]
    run_ops = sum(total.counts.get(op, 0) for op in primary)
    rates: dict[str, Any] = {"ops_per_s": round(run_ops / span, 2) if span else 0.0}
    for op, n in sorted(total.counts.items()):
        if op not in _NOT_RUN_OPS:
            rates[f"{op}_per_s"] = round(n / span, 2) if span else 0.0
    moved = total.bytes.get("retr", 0) + total.bytes.get("stor", 0)
    if opts.scenario in ("retr", "stor", "small", "mixed"):
        rates["mb_per_s"] = round(moved / span / 1e6, 3) if span else 0.0
        rates["mib_per_s"] = round(moved / span / (1 << 20), 3) if span else 0.0
    if opts.scenario == "logins":
        rates["logins_per_s"] = rates["ops_per_s"]
    if opts.scenario == "small":
        rates["transfers_per_s"] = rates["ops_per_s"]
    if opts.scenario == "mixed":
        rates["actions_per_s"] = rates["ops_per_s"]
    if sessions["establish_s"]:
        rates["establish_per_s"] = round(sessions["established"] / sessions["establish_s"], 2)
    result: dict[str, Any] = {
        "tool": "ftpd-load",
        "schema": SCHEMA_VERSION,
        "scenario": opts.scenario,
        "target": display_url(opts.host, opts.port, opts.user, opts.tls, opts.implicit_tls),
        "model": "open" if opts.rate else "closed",
        "params": opts.public(),
        "started": started,
        "ended": ended,
        "run_s": round(span, 4),
        "interrupted": run.interrupted,
        "watchdog_fired": run.watchdog_fired,
        "workers": len(run.workers),
        "sessions": sessions,
        "counts": dict(sorted(total.counts.items())),
        "errors": dict(sorted(total.errors.items())),
        "errors_total": total.errors_total(),
        "error_texts": dict(sorted(total.error_texts.items())),
        # Open model: from each action's intended start. Closed model: from its actual start.
        "latency": {op: h.summary_ms() for op, h in sorted(total.latency.items())},
        # The headline operations' samples merged (in mixed: every action, whatever its kind).
        "primary_latency": run.primary_histogram(total).summary_ms(),
        "bytes": dict(sorted(total.bytes.items())),
        "rates": rates,
        "server": _server(run, sessions["established"], run_ops),
        "prepared": {"run_dir": prepared.run_dir, "retr_path": prepared.retr_path},
        "cleanup_problems": cleanup_problems,
        "worker_bugs": run.fatal,
        "timeline": run.timeline,
    }
    if opts.rate:
        result["service_latency"] = {op: h.summary_ms() for op, h in sorted(total.service.items())}
        result["primary_service_latency"] = run.primary_histogram(total, service=True).summary_ms()
        result["schedule"] = {
            "rate": opts.rate,
            "arrivals": opts.arrivals,
            "intended": total.intended,
            "started": total.intended - total.missed,
            "missed": total.missed,
            "intended_per_s": round(total.intended / span, 2) if span else 0.0,
            "start_lag": total.lag.summary_ms(),
        }
    return result


def write_json(result: dict[str, Any], path: str) -> None:
    """Write the result (``-`` for stdout)."""
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    if path == "-":
        print(text, end="")
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def check_plot_available() -> None:
    """Raise SystemExit with a clear message when matplotlib is missing (before any run)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(
            "ftpd-load: --plot needs matplotlib, which is not installed "
            "(pip install 'ftpd[plot]' or pip install matplotlib)"
        ) from None


def plot(result: dict[str, Any], path: str) -> None:
    """Draw sessions, throughput and latency percentiles over time into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["timeline"]
    t = [p["t"] for p in points]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(t, [p["sessions"] for p in points], label="sessions open")
    if any("pss_kib" in p for p in points):
        ax2 = axes[0].twinx()
        ax2.plot(
            t, [p.get("pss_kib", float("nan")) / 1024 for p in points], "r--", label="server PSS"
        )
        ax2.set_ylabel("server PSS (MiB)")
    axes[0].set_ylabel("sessions")
    axes[1].plot(t, [p["ops_per_s"] for p in points], label="ops/s")
    axes[1].plot(t, [p["establish_per_s"] for p in points], label="sessions established/s")
    if result["scenario"] in ("retr", "stor", "small", "mixed"):
        ax3 = axes[1].twinx()
        ax3.plot(t, [p["mb_per_s"] for p in points], "g--", label="MB/s")
        ax3.set_ylabel("MB/s")
    axes[1].set_ylabel("per second")
    axes[1].legend(loc="upper left")
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        axes[2].plot(t, [p.get(key, float("nan")) for p in points], label=key[:-3])
    axes[2].set_ylabel("latency (ms)")
    axes[2].set_xlabel("seconds since start")
    axes[2].legend(loc="upper left")
    fig.suptitle(f"ftpd-load {result['scenario']} ({result['started']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
