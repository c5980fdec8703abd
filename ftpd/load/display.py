"""Live progress while a run goes on, and the summary table at its end.

With rich importable and stdout a terminal the progress is a live panel; otherwise one plain line
per interval goes to stderr (so that ``--json -`` on stdout stays clean).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def progress_line(point: dict[str, Any], p99_so_far: float | None) -> str:
    """One plain progress line."""
    line = (
        f"[{point['t']:7.1f}s] {point['phase']:<9} sessions {point['sessions']:>6}"
        f"  ops/s {point['ops_per_s']:>9.1f}"
    )
    if point.get("establish_per_s"):
        line += f"  connects/s {point['establish_per_s']:>8.1f}"
    if point.get("mb_per_s"):
        line += f"  MB/s {point['mb_per_s']:>8.1f}"
    line += f"  errors {point['errors']:>5}  p99 {_fmt_ms(p99_so_far)} ms"
    if "pss_kib" in point:
        line += f"  server PSS {point['pss_kib'] / 1024:.1f} MiB"
    return line


class PlainProgress:
    """Periodic progress lines on a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def start(self) -> None:
        pass

    def update(self, point: dict[str, Any], p99_so_far: float | None) -> None:
        print(progress_line(point, p99_so_far), file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A rich live panel, refreshed at every interval."""

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.console = Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def start(self) -> None:
        self.live.start()

    def update(self, point: dict[str, Any], p99_so_far: float | None) -> None:
        from rich.table import Table

        table = Table(title=self.title, show_header=True)
        for col in ("time", "phase", "sessions", "ops/s", "connects/s", "MB/s", "errors", "p99 ms"):
            table.add_column(col, justify="right")
        table.add_row(
            f"{point['t']:.1f}s",
            point["phase"],
            str(point["sessions"]),
            f"{point['ops_per_s']:.1f}",
            f"{point['establish_per_s']:.1f}",
            f"{point['mb_per_s']:.1f}",
            str(point["errors"]),
            _fmt_ms(p99_so_far),
        )
        self.live.update(table, refresh=True)

    def stop(self) -> None:
        self.live.stop()


def make_progress(mode: str, title: str) -> PlainProgress | RichProgress | None:
    """``auto``: rich on a terminal when importable, else plain; ``none``: no progress."""
    if mode == "none":
        return None
    if mode in ("auto", "rich") and (sys.stdout.isatty() or mode == "rich"):
        try:
            return RichProgress(title)
        except ImportError:
            if mode == "rich":
                print("ftpd-load: rich is not installed; plain progress", file=sys.stderr)
    return PlainProgress()


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """The per-operation table: op, count, errors, rate, latency percentiles."""
    errors_by_op: dict[str, int] = {}
    for key, n in result["errors"].items():
        op = key.split(" ", 1)[0]
        errors_by_op[op] = errors_by_op.get(op, 0) + n
    ops = sorted(set(result["counts"]) | set(errors_by_op))
    rows = []
    for op in ops:
        lat = result["latency"].get(op, {})
        rate = result["rates"].get(f"{op}_per_s")
        rows.append(
            [
                op,
                str(result["counts"].get(op, 0)),
                str(errors_by_op.get(op, 0)),
                "-" if rate is None else f"{rate:.1f}",
                *(_fmt_ms(lat.get(k)) for k in ("p50", "p90", "p99", "max", "mean")),
            ]
        )
    return rows


SUMMARY_HEADER = ["op", "ok", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"]


def summary_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Headline figures below the table."""
    facts: list[tuple[str, str]] = []
    s = result["sessions"]
    facts.append(("measured for", f"{result['run_s']:.2f} s"))
    if result["scenario"] not in ("logins",):
        facts.append(("sessions established", f"{s['established']} / {s['target']}"))
    if s.get("establish_s"):
        facts.append(("time to establish", f"{s['establish_s']:.3f} s"))
    if s.get("alive_at_end") is not None:
        facts.append(("alive at the end", f"{s['alive_at_end']} / {s['established']}"))
    rates = result["rates"]
    for key in ("logins_per_s", "transfers_per_s", "actions_per_s", "mb_per_s", "establish_per_s"):
        if key in rates:
            facts.append((key.replace("_per_s", "/s").replace("_", " "), f"{rates[key]:.2f}"))
    server = result.get("server") or {}
    if "per_session_kib" in server:
        facts.append(("server memory per session", f"{server['per_session_kib']:.1f} KiB PSS"))
    if "pss_kib_before" in server:
        facts.append(
            (
                "server PSS before / established / end",
                f"{server.get('pss_kib_before', 0) / 1024:.1f} / "
                f"{server.get('pss_kib_after', 0) / 1024:.1f} / "
                f"{server.get('pss_kib_end', 0) / 1024:.1f} MiB",
            )
        )
    if "fds_before" in server:
        facts.append(
            (
                "server fds before / established / end",
                f"{server.get('fds_before')} / {server.get('fds_after')} / {server.get('fds_end')}",
            )
        )
    if server.get("cpu_us_per_op") is not None:
        facts.append(("server CPU per op", f"{server['cpu_us_per_op']:.1f} µs"))
    if server.get("cpu_us_per_session") is not None:
        facts.append(("server CPU per session set-up", f"{server['cpu_us_per_session']:.1f} µs"))
    facts.append(("errors", str(result["errors_total"])))
    if result["interrupted"]:
        facts.append(("interrupted", "yes: partial report"))
    if result["watchdog_fired"]:
        facts.append(("watchdog", "fired: the run overran its time bound and was stopped"))
    return facts


def render_plain(result: dict[str, Any]) -> str:
    """The summary as fixed-width text."""
    rows = [SUMMARY_HEADER, *summary_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(SUMMARY_HEADER))]
    lines = [f"ftpd-load {result['scenario']}: {result['started']} .. {result['ended']}"]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for key, value in summary_facts(result):
        lines.append(f"{key}: {value}")
    if result["errors"]:
        lines.append("errors by kind:")
        for key, n in result["errors"].items():
            lines.append(f"  {key}: {n}")
    return "\n".join(lines)


def print_summary(result: dict[str, Any], use_rich: bool, stream: TextIO | None = None) -> None:
    """Print the final summary (a rich table when ``use_rich``)."""
    stream = stream or sys.stdout
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            use_rich = False
    if not use_rich:
        print(render_plain(result), file=stream, flush=True)
        return
    console = Console(file=stream)
    table = Table(title=f"ftpd-load {result['scenario']}")
    for i, col in enumerate(SUMMARY_HEADER):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in summary_rows(result):
        table.add_row(*row)
    console.print(table)
    for key, value in summary_facts(result):
        console.print(f"{key}: [bold]{value}[/bold]")
    for key, n in result["errors"].items():
        console.print(f"  [red]{key}[/red]: {n}")
