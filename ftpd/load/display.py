"""Live progress while a run goes on, and the summary table at its end.

With rich importable and stdout a terminal the progress is a live panel; otherwise one plain line
per interval goes to stderr (so that ``--json -`` on stdout stays clean).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ftpd.load.hints import explain


def _fmt_ms(value: float | None) -> str:
    """Milliseconds to four significant digits at most, so columns stay narrow."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


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
    if "intended_per_s" in point:
        line += f"  intended/s {point['intended_per_s']:>7.1f}"
    if point.get("missed"):
        line += f"  missed {point['missed']:>5}"
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
OPEN_HEADER = ["op", "p50 ms", "p99 ms", "max ms", "svc p50", "svc p99", "svc max"]


def open_model_rows(result: dict[str, Any]) -> list[list[str]]:
    """Open model: latency from the intended start beside the service time, per action kind."""
    service = result.get("service_latency") or {}
    rows = []
    pairs = [(op, result["latency"][op], service[op]) for op in sorted(service)]
    if len(pairs) > 1:
        pairs.append(("all", result["primary_latency"], result["primary_service_latency"]))
    for op, lat, svc in pairs:
        rows.append(
            [
                op,
                *(_fmt_ms(lat.get(k)) for k in ("p50", "p99", "max")),
                *(_fmt_ms(svc.get(k)) for k in ("p50", "p99", "max")),
            ]
        )
    return rows


def summary_tables(result: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The summary's tables as (title, header, rows)."""
    title = (
        "latency (scheduled ops: from their intended start)"
        if result.get("model") == "open"
        else "latency"
    )
    tables = [(title, SUMMARY_HEADER, summary_rows(result))]
    if result.get("model") == "open":
        tables.append(
            (
                "from intended start (ms) vs service time (svc: from actual start, ms)",
                OPEN_HEADER,
                open_model_rows(result),
            )
        )
    return tables


def summary_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Headline figures below the table."""
    facts: list[tuple[str, str]] = []
    s = result["sessions"]
    if result.get("target"):
        facts.append(("target", result["target"]))
    facts.append(("measured for", f"{result['run_s']:.2f} s"))
    schedule = result.get("schedule")
    if schedule:
        facts.append(
            (
                "schedule",
                f"{schedule['rate']:g}/s {schedule['arrivals']}: {schedule['intended']} starts "
                f"intended, {schedule['started']} made, {schedule['missed']} missed",
            )
        )
        lag = schedule["start_lag"]
        if lag.get("count"):
            facts.append(
                (
                    "start lag (actual - intended)",
                    f"p50 {_fmt_ms(lag['p50'])} / p99 {_fmt_ms(lag['p99'])} / "
                    f"max {_fmt_ms(lag['max'])} ms",
                )
            )
        primary, service = result["primary_latency"], result["primary_service_latency"]
        facts.append(
            (
                "p99 from intended start / service time",
                f"{_fmt_ms(primary.get('p99'))} / {_fmt_ms(service.get('p99'))} ms",
            )
        )
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
        per = server["per_session_kib"]
        if per >= 0:
            facts.append(("server memory per session", f"{per:.1f} KiB PSS"))
        else:
            # Less than the noise: the server released memory from earlier work meanwhile.
            facts.append(
                (
                    "server memory per session",
                    "below the noise (its PSS fell while the sessions opened, releasing memory "
                    "from earlier work: measure a freshly started server)",
                )
            )
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


def _address(result: dict[str, Any]) -> str:
    params = result.get("params", {})
    return f"{params.get('host', '?')}:{params.get('port', '?')}"


def error_lines(result: dict[str, Any]) -> list[str]:
    """Each error kind with its count, what the server said, and cause and fix when known."""
    return explain(result["errors"], result.get("error_texts", {}), _address(result))


def render_plain(result: dict[str, Any]) -> str:
    """The summary as fixed-width text."""
    lines = [f"ftpd-load {result['scenario']}: {result['started']} .. {result['ended']}"]
    for title, header, body in summary_tables(result):
        rows = [header, *body]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines.append(title + ":")
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
        lines.extend(error_lines(result))
    return "\n".join(lines)


def print_summary(result: dict[str, Any], use_rich: bool, stream: TextIO | None = None) -> None:
    """Print the final summary (rich tables when ``use_rich``)."""
    stream = stream or sys.stdout
    if use_rich:
        try:
            from rich import box
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table
        except ImportError:
            use_rich = False
    if not use_rich:
        print(render_plain(result), file=stream, flush=True)
        return
    console = Console(file=stream)
    for title, header, body in summary_tables(result):
        # SIMPLE_HEAD and no padding on the edges: nine columns fit in 80 without cutting
        # an op name ("establish") or a figure.
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for i, col in enumerate(header):
            width = max(len(r[i]) for r in body) if body else 0
            table.add_column(
                col, justify="left" if i == 0 else "right", no_wrap=i == 0, min_width=width
            )
        for row in body:
            table.add_row(*row)
        console.print(table)
    for key, value in summary_facts(result):
        console.print(f"{key}: [bold]{escape(value)}[/bold]")
    if result["errors"]:
        console.print("errors by kind:")
        for line in error_lines(result):
            console.print(escape(line), style="red" if not line.startswith("    ") else None)
