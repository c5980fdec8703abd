"""The side-by-side table of ``ftpd-load compare``: each figure per server, ratios to the first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SIGNIFICANT = 0.02  # a ratio this far from 1 gets a verdict (better or worse)

Getter = Callable[[dict[str, Any]], float | None]


def _get(*path: str) -> Getter:
    def getter(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value)

    return getter


def _per_session(result: dict[str, Any]) -> float | None:
    # A negative figure is noise (the server released earlier memory meanwhile): no value.
    kib = _get("server", "per_session_kib")(result)
    return None if kib is None or kib < 0 else kib


def _mib(result: dict[str, Any]) -> float | None:
    kib = _get("server", "pss_kib_end")(result)
    return None if kib is None else kib / 1024


# (label, value, True when higher is better); rows with no value for any run are left out.
METRICS: tuple[tuple[str, Getter, bool], ...] = (
    ("ops/s (headline)", _get("rates", "ops_per_s"), True),
    ("MB/s", _get("rates", "mb_per_s"), True),
    ("p50 ms", _get("primary_latency", "p50"), False),
    ("p90 ms", _get("primary_latency", "p90"), False),
    ("p99 ms", _get("primary_latency", "p99"), False),
    ("p99 service ms", _get("primary_service_latency", "p99"), False),
    ("max ms", _get("primary_latency", "max"), False),
    ("errors", _get("errors_total"), False),
    ("missed starts", _get("schedule", "missed"), False),
    ("sessions established", _get("sessions", "established"), True),
    ("alive at the end", _get("sessions", "alive_at_end"), True),
    ("server CPU µs/op", _get("server", "cpu_us_per_op"), False),
    ("server CPU µs/session", _get("server", "cpu_us_per_session"), False),
    ("server KiB/session", _per_session, False),
    ("server PSS at end MiB", _mib, False),
)


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"


def comparison_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one metric per row, one server per column, ratios to the first."""
    header = ["metric", *(r.get("target", f"run {i + 1}") for i, r in enumerate(runs))]
    rows: list[list[str]] = []
    for label, getter, higher_better in METRICS:
        values = [getter(r) for r in runs]
        if all(v is None for v in values):
            continue
        row = [label]
        base = values[0]
        for i, v in enumerate(values):
            if v is None:
                row.append("-")
            elif i == 0 or base is None or base <= 0 or v < 0:
                row.append(_fmt(v))
            else:
                ratio = v / base
                verdict = ""
                if abs(ratio - 1) >= SIGNIFICANT:
                    verdict = ", better" if (ratio > 1) == higher_better else ", worse"
                row.append(f"{_fmt(v)} (×{ratio:.2f}{verdict})")
        rows.append(row)
    return header, rows


def render_text(runs: list[dict[str, Any]]) -> str:
    """The comparison table as fixed-width text."""
    header, rows = comparison_rows(runs)
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for n, row in enumerate(table):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
