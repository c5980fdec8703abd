"""Line charts as inline SVG, written by hand: the HTML report needs no library and no network.

One function, :func:`line_chart`, draws series of (x, y) points (None leaves a gap) on linear
or logarithmic y axes with "nice" ticks, grid lines, a legend, and shaded x ranges (the run's
phases). Everything is escaped; the output is a standalone ``<svg>`` element.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 58  # margins: y tick labels, x labels and the legend


@dataclass(slots=True)
class Series:
    """One line: a name for the legend, its points, and how to draw it."""

    name: str
    points: Sequence[tuple[float, float | None]]
    dashed: bool = False
    color: str = ""


@dataclass(slots=True)
class Band:
    """A shaded x range with a label (a phase of the run)."""

    x0: float
    x1: float
    label: str
    color: str = "#f1f3f6"


@dataclass(slots=True)
class Chart:
    """What :func:`line_chart` draws."""

    series: list[Series]
    y_label: str
    x_label: str = "seconds since start"
    log_y: bool = False
    bands: list[Band] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks at 1, 2, 5 x 10^k spanning [lo, hi] (lo > 0), thinned to powers of ten if many."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [m * 10.0**k for k in range(k0, k1 + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo / 5 <= t <= hi * 5]
    if len(ticks) > 9:
        ticks = [10.0**k for k in range(k0, k1 + 1)]
    return ticks


def fmt(v: float) -> str:
    """A tick label: short, no needless decimals."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def line_chart(chart: Chart, chart_id: str) -> str:
    """The chart as an ``<svg>`` element (class ``chart``): a ``path.series`` per line, and a
    ``circle.point`` for each point with no neighbour to join.

    With no point to draw it is a short note instead, of class ``chart-empty``.
    """
    xs = [x for s in chart.series for x, _ in s.points]
    ys = [y for s in chart.series for _, y in s.points if y is not None]
    if chart.log_y:
        ys = [y for y in ys if y > 0]
    if not xs or not ys:
        return _empty(chart, chart_id)
    x_lo, x_hi = min(xs), max(xs)
    for band in chart.bands:
        x_lo, x_hi = min(x_lo, band.x0), max(x_hi, band.x1)
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    if chart.log_y:
        y_ticks = log_ticks(min(ys), max(ys))
        y_lo, y_hi = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    else:
        y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
        y_lo, y_hi = y_ticks[0], y_ticks[-1]
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        v = math.log10(max(y, 10.0**y_lo)) if chart.log_y else y
        return TOP + ph - (v - y_lo) / (y_hi - y_lo) * ph

    out = [
        f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(chart.y_label)}">'
    ]
    for band in chart.bands:
        x0, x1 = px(band.x0), px(band.x1)
        out.append(
            f'<rect class="band" x="{x0:.1f}" y="{TOP}" width="{max(0.0, x1 - x0):.1f}" '
            f'height="{ph}" fill="{band.color}"/>'
            f'<text x="{x0 + 3:.1f}" y="{TOP + 11}" class="band-label">{escape(band.label)}</text>'
        )
    for t in y_ticks:
        y = py(t)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{fmt(t)}</text>'
        )
    for t in nice_ticks(x_lo, x_hi, 8):
        if t < x_lo or t > x_hi:
            continue
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + ph}" y2="{TOP + ph + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{TOP + ph + 16}" class="tick" text-anchor="middle">'
            f"{fmt(t)}</text>"
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>'
        f'<text x="{LEFT + pw / 2:.1f}" y="{TOP + ph + 32}" class="label" '
        f'text-anchor="middle">{escape(chart.x_label)}</text>'
        f'<text transform="translate(14 {TOP + ph / 2:.1f}) rotate(-90)" class="label" '
        f'text-anchor="middle">{escape(chart.y_label)}'
        f"{' (log scale)' if chart.log_y else ''}</text>"
    )
    legend_x = LEFT
    for i, s in enumerate(chart.series):
        color = s.color or PALETTE[i % len(PALETTE)]
        d = _path(s.points, px, py, chart.log_y)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if "L" in d:  # a path of lone points only would draw nothing
            out.append(
                f'<path class="series" d="{d}" stroke="{color}"{dash}>'
                f"<title>{escape(s.name)}</title></path>"
            )
        for x, y in _lone_points(s.points, chart.log_y):
            out.append(
                f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" '
                f'fill="{color}"><title>{escape(s.name)}</title></circle>'
            )
        ly = HEIGHT - 10
        out.append(
            f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 22}" y="{ly}" class="legend">{escape(s.name)}</text>'
        )
        legend_x += 30 + 7 * len(s.name)
    out.append("</svg>")
    return "".join(out)


def _usable(y: float | None, log_y: bool) -> bool:
    return y is not None and not (log_y and y <= 0) and math.isfinite(y)


def _path(
    points: Sequence[tuple[float, float | None]],
    px: Callable[[float], float],
    py: Callable[[float], float],
    log_y: bool,
) -> str:
    parts: list[str] = []
    pen_down = False
    for x, y in points:
        if not _usable(y, log_y):
            pen_down = False
            continue
        assert y is not None
        parts.append(f"{'L' if pen_down else 'M'}{px(x):.1f} {py(y):.1f}")
        pen_down = True
    return " ".join(parts)


def _lone_points(
    points: Sequence[tuple[float, float | None]], log_y: bool
) -> list[tuple[float, float]]:
    """Points with no usable neighbour: a path of one point draws nothing, so mark them."""
    out = []
    for i, (x, y) in enumerate(points):
        if not _usable(y, log_y):
            continue
        before = i > 0 and _usable(points[i - 1][1], log_y)
        after = i + 1 < len(points) and _usable(points[i + 1][1], log_y)
        if not before and not after:
            assert y is not None
            out.append((x, y))
    return out


def _empty(chart: Chart, chart_id: str) -> str:
    return (
        f'<svg class="chart-empty" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} 60" role="img" aria-label="{escape(chart.y_label)}">'
        f'<text x="{WIDTH / 2}" y="34" class="label" text-anchor="middle">'
        f"no data: {escape(chart.y_label)}</text></svg>"
    )
