"""``--report FILE.html``: one self-contained page with a run's charts, summary and parameters.

Nothing is fetched when the page opens (no CDN, no web fonts): the charts are inline SVG drawn
by :mod:`ftpd.load.svgchart`, the styles inline. One small inline script only marks, once the
page has loaded, how many charts the browser laid out with visible lines (``data-charts-*`` on
``<body>``) and counts script errors: the tests read these from a headless Chromium.
``compare`` writes the same kind of page for several runs side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

from ftpd.load.display import error_lines, summary_facts, summary_tables
from ftpd.load.svgchart import Band, Chart, Series, line_chart

_PHASE_COLORS = {
    "establish": "#eef4fb",
    "settle": "#f6f6f6",
    "run": "#eefaf0",
    "final": "#fbf3ea",
}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid
#dde1e7;padding-bottom:4px}h3{font-size:14px;margin:14px 0 2px;color:#3b4456}
.sub{color:#5b6475;margin:0 0 14px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:8px 14px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:6px 18px}
figure{margin:0;background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:6px 8px}
figcaption{font-weight:600;font-size:13px;color:#3b4456}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#e6e9ee;stroke-width:1}svg .axis{stroke:#8a93a3}
svg .frame{fill:none;stroke:#b8bfcb}svg .tick{font-size:11px;fill:#5b6475}
svg .label{font-size:12px;fill:#3b4456}svg .legend{font-size:11.5px;fill:#1d2330}
svg .band-label{font-size:10px;fill:#8a93a3}
svg path.series{fill:none;stroke-width:1.8;stroke-linejoin:round}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #dde1e7;padding:3px 9px;text-align:right;white-space:nowrap}
th{background:#f1f3f6}td:first-child,th:first-child{text-align:left}
.facts td,.facts th{text-align:left}.errors{white-space:pre-wrap;background:#fff5f5;border:1px solid
#f0c8c8;padding:8px 12px;border-radius:6px;font:12.5px/1.4 ui-monospace,monospace}
.better{color:#17803d}.worse{color:#b42318}
footer{color:#8a93a3;font-size:12px;margin-top:30px}
"""

# Marks what the browser really drew (tests read it with --dump-dom); no effect on the page.
_CHECK = """
window.addEventListener("error",function(){var b=document.body;
b.setAttribute("data-js-errors",String(+(b.getAttribute("data-js-errors")||0)+1));});
window.addEventListener("load",function(){var charts=document.querySelectorAll("svg.chart"),
drawn=0;charts.forEach(function(svg){var paths=svg.querySelectorAll("path.series,circle.point"),
ok=paths.length>0;paths.forEach(function(p){var b=p.getBBox();if(!(b.width>0||b.height>0))ok=false;});
if(ok){drawn++;svg.setAttribute("data-rendered","1");}});var b=document.body;
b.setAttribute("data-charts-total",String(charts.length));
b.setAttribute("data-charts-rendered",String(drawn));});
"""


def _points(
    timeline: list[dict[str, Any]], value: Callable[[dict[str, Any]], float | None]
) -> list[tuple[float, float | None]]:
    return [(p["t"], value(p)) for p in timeline]


def _key(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda p: p.get(key)


def _bands(timeline: list[dict[str, Any]]) -> list[Band]:
    """Shaded ranges, one per phase: a point's phase covers the interval that ends at it."""
    bands: list[Band] = []
    prev_t = 0.0
    for p in timeline:
        phase = p["phase"]
        if bands and bands[-1].label == phase:
            bands[-1].x1 = p["t"]
        else:
            bands.append(Band(prev_t, p["t"], phase, _PHASE_COLORS.get(phase, "#f6f6f6")))
        prev_t = p["t"]
    return bands


def run_charts(result: dict[str, Any]) -> list[tuple[str, Chart]]:
    """The charts of one run, captioned, in page order."""
    tl = result["timeline"]
    bands = _bands(tl)
    open_model = result.get("model") == "open"
    charts: list[tuple[str, Chart]] = []
    rate_series = [Series(f"{_headline(result)}/s", _points(tl, _key("ops_per_s")))]
    if open_model:
        rate_series.append(
            Series("intended starts/s", _points(tl, _key("intended_per_s")), dashed=True)
        )
    rate_series.append(Series("sessions established/s", _points(tl, _key("establish_per_s"))))
    charts.append(("Throughput", Chart(rate_series, "per second", bands=bands)))
    if any(p.get("mb_per_s") for p in tl):
        charts.append(
            (
                "Transfer rate",
                Chart(
                    [Series("MB/s (10^6 B/s)", _points(tl, _key("mb_per_s")))], "MB/s", bands=bands
                ),
            )
        )
    latency = [
        Series(name, _points(tl, _key(f"{name}_ms"))) for name in ("p50", "p90", "p99", "max")
    ]
    if open_model:
        latency.append(Series("p99 service time", _points(tl, _key("service_p99_ms")), dashed=True))
    caption = "Latency per interval" + (
        " (from each intended start; dashed: service time)" if open_model else ""
    )
    charts.append((caption, Chart(latency, "ms", log_y=True, bands=bands)))
    kinds = sorted({k for p in tl for k in p.get("errors_by_kind", {})})
    errors = [
        Series("all errors", _points(tl, lambda p: sum(p.get("errors_by_kind", {}).values())))
    ]
    errors += [Series(kind, _points(tl, _error_count(kind))) for kind in kinds[:9]]
    charts.append(("Errors by kind per interval", Chart(errors, "errors", bands=bands)))
    charts.append(
        (
            "Sessions open",
            Chart([Series("sessions", _points(tl, _key("sessions")))], "sessions", bands=bands),
        )
    )
    if any("pss_kib" in p for p in tl):
        charts.append(
            (
                "Server CPU",
                Chart(
                    [Series("CPU (% of one core)", _points(tl, _key("cpu_pct")))], "%", bands=bands
                ),
            )
        )
        memory = [
            Series("PSS", _points(tl, lambda p: _mib(p.get("pss_kib")))),
            Series("RSS", _points(tl, lambda p: _mib(p.get("rss_kib"))), dashed=True),
        ]
        charts.append(("Server memory", Chart(memory, "MiB", bands=bands)))
        charts.append(
            (
                "Server open fds",
                Chart([Series("fds", _points(tl, _key("fds")))], "fds", bands=bands),
            )
        )
    return charts


def _error_count(kind: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda p: p.get("errors_by_kind", {}).get(kind, 0)


def _pss_mib(p: dict[str, Any]) -> float | None:
    return _mib(p.get("pss_kib"))


def _mib(kib: float | None) -> float | None:
    return None if kib is None else round(kib / 1024, 2)


def _headline(result: dict[str, Any]) -> str:
    return {"logins": "logins", "small": "transfers", "mixed": "actions", "hold": "NOOPs"}.get(
        result["scenario"], "transfers"
    )


def _figures(charts: list[tuple[str, Chart]], prefix: str) -> str:
    out = ['<div class="charts">']
    for i, (caption, chart) in enumerate(charts):
        out.append(
            f"<figure><figcaption>{escape(caption)}</figcaption>"
            f"{line_chart(chart, f'{prefix}-{i}')}</figure>"
        )
    out.append("</div>")
    return "".join(out)


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cards(result: dict[str, Any]) -> str:
    rates = result["rates"]
    cards = [
        (f"{rates.get('ops_per_s', 0):.1f}", f"{_headline(result)}/s"),
        (f"{result['primary_latency'].get('p99', 0):.2f} ms", "p99 latency"),
    ]
    if result.get("model") == "open":
        cards[-1] = (cards[-1][0], "p99 from intended start")
        svc = result["primary_service_latency"].get("p99", 0)
        cards.append((f"{svc:.2f} ms", "p99 service time"))
        cards.append((str(result["schedule"]["missed"]), "missed starts"))
    cards.append((str(result["errors_total"]), "errors"))
    s = result["sessions"]
    if result["scenario"] != "logins":
        cards.append((f"{s['established']} / {s['target']}", "sessions established"))
    return (
        '<div class="cards">'
        + "".join(
            f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards
        )
        + "</div>"
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}<footer>Written by ftpd-load. Self-contained: open it offline."
        f"</footer></main><script>{_CHECK}</script></body></html>\n"
    )


def _run_body(result: dict[str, Any], prefix: str) -> str:
    parts = [_cards(result), "<h2>Over time</h2>", _figures(run_charts(result), prefix)]
    parts.append("<h2>Summary</h2>")
    for title, header, rows in summary_tables(result):
        parts.append(f"<h3>{escape(title)}</h3>{_table(header, rows)}")
    parts.append(_table(["figure", "value"], [list(f) for f in summary_facts(result)], "facts"))
    if result["errors"]:
        parts.append("<h3>Errors by kind</h3>")
        parts.append(f"<div class='errors'>{escape(chr(10).join(error_lines(result)))}</div>")
    params = [[k, json.dumps(v)] for k, v in sorted(result["params"].items())]
    parts.append("<h2>Parameters</h2>" + _table(["option", "value"], params, "facts"))
    return "".join(parts)


def render_run(result: dict[str, Any]) -> str:
    """The HTML page for one run."""
    title = f"ftpd-load {result['scenario']} → {result.get('target', '')}"
    sub = (
        f"{result['started']} .. {result['ended']} · {result.get('model', 'closed')} model · "
        f"measured for {result['run_s']:.2f} s"
    )
    return _page(
        title, f"<h1>{escape(title)}</h1><p class='sub'>{escape(sub)}</p>" + _run_body(result, "c")
    )


def write_report(result: dict[str, Any], path: str) -> None:
    """Write the HTML report of one run (or of a comparison, for ``compare`` results)."""
    text = render_compare(result) if "compare" in result else render_run(result)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# -- compare ---------------------------------------------------------------------------------


def render_compare(comparison: dict[str, Any]) -> str:
    """The HTML page of ``ftpd-load compare``: the table with ratios, overlaid charts, each run."""
    from ftpd.load.comparison import comparison_rows

    runs = comparison["compare"]
    first = runs[0]
    title = f"ftpd-load compare: {first['scenario']} on {len(runs)} servers"
    header, rows = comparison_rows(runs)
    parts = [f"<h1>{escape(title)}</h1>"]
    parts.append(
        f"<p class='sub'>One after another, the same options; ratios are to the first server. "
        f"{escape(comparison['started'])} .. {escape(comparison['ended'])}</p>"
    )
    parts.append(_table(header, rows))
    overlays: list[tuple[str, Chart]] = []
    for caption, value, unit, log_y in (
        ("Throughput", _key("ops_per_s"), "per second", False),
        ("p99 latency per interval", _key("p99_ms"), "ms", True),
        ("Server CPU", _key("cpu_pct"), "% of one core", False),
        ("Server memory (PSS)", _pss_mib, "MiB", False),
    ):
        series = [
            Series(r.get("target", f"run {i + 1}"), _points(r["timeline"], value))
            for i, r in enumerate(runs)
        ]
        if any(y is not None for s in series for _, y in s.points):
            overlays.append((caption, Chart(series, unit, log_y=log_y)))
    parts.append("<h2>Side by side over time</h2>" + _figures(overlays, "cmp"))
    for i, r in enumerate(runs):
        parts.append(f"<h2>{i + 1}. {escape(r.get('target', ''))}</h2>")
        parts.append(_run_body(r, f"run{i}"))
    return _page(title, "".join(parts))
