"""report.html: one self-contained page per graded lab (inline CSS and SVG, no script, no
network): the score, a breakdown by item, and plots of each measured value against its
threshold.

It reads the finished LabResult and nothing else. Thresholds are what the grader recorded
with a measured key `k` of an item: `"curve:k": {"zero_at": a, "full_at": b}` (the scoring
curve; the kit's score_curve records it) or `"limit:k": {"max": x}` / `{"min": x}`. Each
plot is an `<svg data-plot="curve|max|min" data-item=... data-key=...>`, so tests can count
them. Values without a threshold are listed in a table. Items that are not `visible` show
their score only (Gradescope's visibility levels).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

from labgrade.scoring import ItemResult, LabResult, Status

_COLORS = {Status.PASSED: "#1a7f37", Status.PARTIAL: "#bf8700", Status.FAILED: "#cf222e",
           Status.ERROR: "#8250df", Status.UNGRADABLE: "#6e7781", Status.OUT_OF_SCOPE: "#afb8c1",
           Status.NOT_RUN: "#57606a"}
_PREFIXES = ("curve:", "limit:", "leaderboard:")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(value: float) -> str:
    """Numbers as the console table prints them (30, 12.5, 0.001)."""
    return f"{value:g}"


# ------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class Threshold:
    kind: str                 # "curve" | "max" | "min"
    zero_at: float = math.nan  # curve
    full_at: float = math.nan  # curve
    limit: float = math.nan    # max / min


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _threshold(measured: dict, key: str) -> Threshold | None:
    curve = measured.get(f"curve:{key}")
    if (isinstance(curve, dict) and _is_number(curve.get("zero_at"))
            and _is_number(curve.get("full_at"))):
        return Threshold("curve", float(curve["zero_at"]), float(curve["full_at"]))
    limit = measured.get(f"limit:{key}")
    if isinstance(limit, dict):
        for kind in ("max", "min"):
            if _is_number(limit.get(kind)):
                return Threshold(kind, limit=float(limit[kind]))
    return None


def measured_values(item: ItemResult) -> dict[str, object]:
    """The item's own measurements, without threshold and leaderboard annotations."""
    return {k: v for k, v in item.measured.items() if not k.startswith(_PREFIXES)}


def thresholds(item: ItemResult) -> dict[str, Threshold]:
    """The recorded threshold of each numeric measurement that has one."""
    found = {}
    for key, value in measured_values(item).items():
        threshold = _threshold(item.measured, key) if _is_number(value) else None
        if threshold is not None:
            found[key] = threshold
    return found


def curve_fraction(value: float, t: Threshold) -> float:
    if t.zero_at == t.full_at:
        return 0.0
    return min(1.0, max(0.0, (value - t.zero_at) / (t.full_at - t.zero_at)))


# ----------------------------------------------------------------------- SVG
def _plot_tag(w: int, h: int, kind: str, item: str, key: str) -> str:
    return (f'<svg class="plot" data-plot="{kind}" data-item="{esc(item)}" '
            f'data-key="{esc(key)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">')


def _svg_curve(value: float, t: Threshold, awarded: float | None, item: str, key: str) -> str:
    """The scoring curve (fraction of points vs measured value) with the measurement."""
    w, h, left, right, top, bottom = 420, 210, 46, 16, 14, 38
    lo, hi = min(t.zero_at, t.full_at, value), max(t.zero_at, t.full_at, value)
    pad = (hi - lo) * 0.15 or max(abs(hi), 1.0) * 0.15
    x0, x1 = lo - pad, hi + pad
    if x0 < 0 <= min(t.zero_at, t.full_at, value):
        x0 = 0.0

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (w - left - right)

    def sy(fraction: float) -> float:
        return top + (1 - fraction) * (h - top - bottom)

    first, last = (0.0, 1.0) if t.full_at > t.zero_at else (1.0, 0.0)
    a, b = sorted((t.zero_at, t.full_at))
    points = [(x0, first), (a, first), (b, last), (x1, last)]
    path = " ".join(f"{sx(x):.1f},{sy(f):.1f}" for x, f in points)
    fraction = curve_fraction(value, t)
    parts = [
        _plot_tag(w, h, "curve", item, key),
        f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" '
        f'fill="#f6f8fa" stroke="#d0d7de"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 6}" y="{sy(frac) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{int(frac * 100)}%</text>')
    for x, label in ((t.zero_at, "0 pts"), (t.full_at, "full")):
        parts.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{h - bottom}" '
                     f'stroke="#57606a" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{sx(x):.1f}" y="{h - bottom + 14}" text-anchor="middle" '
                     f'class="tick">{esc(num(x))}</text>')
        parts.append(f'<text x="{sx(x):.1f}" y="{h - bottom + 27}" text-anchor="middle" '
                     f'class="tick">{label}</text>')
    parts.append(f'<polyline points="{path}" fill="none" stroke="#0969da" stroke-width="2.5"/>')
    color = "#1a7f37" if fraction >= 1 else "#cf222e" if fraction <= 0 else "#bf8700"
    parts.append(f'<circle cx="{sx(value):.1f}" cy="{sy(fraction):.1f}" r="6" fill="{color}" '
                 f'stroke="#fff" stroke-width="1.5"/>')
    anchor = "end" if sx(value) > w * 0.7 else "start"
    dx = -9 if anchor == "end" else 9
    parts.append(f'<text x="{sx(value) + dx:.1f}" y="{max(sy(fraction) - 8, top + 12):.1f}" '
                 f'text-anchor="{anchor}" class="val">measured {esc(num(value))}</text>')
    if awarded is not None:
        parts.append(f'<text x="{w - right}" y="{top + h - top - bottom - 6}" '
                     f'text-anchor="end" class="tick">awarded {int(round(awarded * 100))}% '
                     f'of the points</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_limit(value: float, t: Threshold, item: str, key: str) -> str:
    """A bar for the measured value against a maximum (or minimum) line."""
    w, h, left, right = 420, 64, 10, 16
    top = max(value, t.limit, 0.0) * 1.15 or 1.0
    bottom = min(0.0, value, t.limit)

    def sx(x: float) -> float:
        return left + (x - bottom) / (top - bottom) * (w - left - right)

    ok = value <= t.limit if t.kind == "max" else value >= t.limit
    color = "#1a7f37" if ok else "#cf222e"
    word = "max" if t.kind == "max" else "min"
    return (
        _plot_tag(w, h, t.kind, item, key) +
        f'<rect x="{left}" y="14" width="{w - left - right}" height="22" fill="#f6f8fa" '
        f'stroke="#d0d7de"/>'
        f'<rect x="{sx(min(0.0, value)):.1f}" y="16" width="{abs(sx(value) - sx(0.0)):.1f}" '
        f'height="18" fill="{color}"/>'
        f'<line x1="{sx(t.limit):.1f}" x2="{sx(t.limit):.1f}" y1="8" y2="42" stroke="#24292f" '
        f'stroke-width="2" stroke-dasharray="4 3"/>'
        f'<text x="{sx(t.limit):.1f}" y="56" text-anchor="middle" class="tick">{word} '
        f'{esc(num(t.limit))}</text>'
        f'<text x="{min(sx(value) + 5, w - right - 60):.1f}" y="30" class="val">'
        f'{esc(num(value))}</text>'
        f"</svg>")


def _svg_breakdown(result: LabResult) -> str:
    """Points by item: each in-scope item is a segment as wide as its max score."""
    items = [i for i in result.items if i.in_scope and i.max_score > 0]
    total = sum(i.max_score for i in items)
    if not total:
        return ""
    w, h = 880, 34
    x = 0.0
    parts = [f'<svg class="breakdown" viewBox="0 0 {w} {h}" width="100%" height="{h}" '
             f'preserveAspectRatio="none" role="img" xmlns="http://www.w3.org/2000/svg">']
    for item in items:
        width = item.max_score / total * w
        filled = width * (item.score / item.max_score)
        color = _COLORS[item.status]
        parts.append(f'<g><title>{esc(item.name)}: {esc(num(item.score))}/'
                     f'{esc(num(item.max_score))}</title>'
                     f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="{h}" fill="#eaeef2" '
                     f'stroke="#fff" stroke-width="2"/>'
                     f'<rect x="{x:.2f}" y="0" width="{filled:.2f}" height="{h}" fill="{color}" '
                     f'stroke="#fff" stroke-width="2"/></g>')
        x += width
    parts.append("</svg>")
    return "".join(parts)


def _svg_item_bar(item: ItemResult) -> str:
    frac = item.score / item.max_score if item.max_score else 0.0
    return (f'<svg class="bar" viewBox="0 0 100 10" width="100" height="10" '
            f'xmlns="http://www.w3.org/2000/svg"><rect width="100" height="10" fill="#eaeef2"/>'
            f'<rect width="{frac * 100:.1f}" height="10" fill="{_COLORS[item.status]}"/></svg>')


# ---------------------------------------------------------------------- page
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;
color:#24292f;background:#fff;max-width:1000px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#57606a;font-size:13px}.total{font-size:40px;font-weight:700;margin:12px 0}
.total small{font-size:18px;color:#57606a;font-weight:400}
.chip{display:inline-block;border-radius:10px;padding:1px 8px;margin-right:6px;color:#fff;
font-size:12px}.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;
border-radius:6px;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:6px 8px;
border-bottom:1px solid #d0d7de;vertical-align:top}td.num{text-align:right;white-space:nowrap;
font-variant-numeric:tabular-nums}.msg{white-space:pre-wrap;font-size:13px;color:#24292f}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:10px 0}
.tick{font-size:11px;fill:#57606a}.val{font-size:12px;font-weight:600}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:-1px}
"""


def _status_counts(result: LabResult) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for item in result.items:
        counts[item.status.value] += 1
    return counts


def _format_value(value: object, key: str = "") -> str:
    if _is_number(value):
        if key.endswith("_bytes") and abs(value) >= 1 << 20:
            return f"{value:,.0f} ({value / (1 << 30):.2f} GiB)"
        if float(value).is_integer() and abs(value) >= 1e6:
            return f"{value:,.0f}"
        return num(value)
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def render(result: LabResult) -> str:
    title = result.title
    pct = (result.score / result.max_score * 100) if result.max_score else 0.0
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(result.lab_id)} — {esc(num(result.score))}/"
           f"{esc(num(result.max_score))}</title><style>{_CSS}</style></head><body>",
           f'<h1>{esc(result.lab_id)}{" — " + esc(title) if title else ""}</h1>',
           f'<div class="meta">{esc(result.mode)} · {esc(result.profile)} profile · '
           f'{esc(result.submission)} · graded in {esc(f"{result.execution_time:.1f}")} s</div>',
           f'<div class="total" id="total"><span id="score" data-value="{esc(result.score)}">'
           f'{esc(num(result.score))}</span> / <span id="max-score" '
           f'data-value="{esc(result.max_score)}">{esc(num(result.max_score))}</span> '
           f'<small>({pct:.0f} %)</small></div>']
    if result.interrupted:
        out.append('<div class="banner" id="interrupted">Grading was interrupted (or is still '
                   'running): items marked not_run did not run and still count in the '
                   'maximum.</div>')
    counts = _status_counts(result)
    out.append('<div id="counts">' + "".join(
        f'<span class="chip" style="background:{_COLORS[Status(s)]}" data-status="{s}" '
        f'data-count="{n}">{esc(s)}: {n}</span>' for s, n in counts.items() if n) + "</div>")

    # -- breakdown
    out.append("<h2>Score breakdown</h2>")
    out.append(_svg_breakdown(result))
    out.append('<div class="legend">' + "".join(
        f'<span><i style="background:{_COLORS[s]}"></i>{s.value}</span>'
        for s in Status if counts[s.value]) + "</div>")
    out.append('<table id="items"><thead><tr><th>item</th><th>status</th><th>points</th>'
               '<th></th><th>feedback</th></tr></thead><tbody>')
    for item in result.items:
        points = (f"{num(item.score)}/{num(item.max_score)}" if item.in_scope
                  else "out of scope")
        message = item.message if item.visibility == "visible" else (
            "(details hidden until the course staff publish them)" if item.message else "")
        out.append(
            f'<tr class="item" data-name="{esc(item.name)}" data-status="{item.status.value}" '
            f'data-score="{esc(item.score)}" data-max-score="{esc(item.max_score)}">'
            f'<td>{esc(item.name)}</td>'
            f'<td><span class="chip" style="background:{_COLORS[item.status]}">'
            f'{item.status.value}</span></td>'
            f'<td class="num">{esc(points)}</td>'
            f'<td>{_svg_item_bar(item) if item.in_scope else ""}</td>'
            f'<td class="msg">{esc(message)}</td></tr>')
    out.append("</tbody></table>")

    # -- measurements
    cards = []
    for item in result.items:
        values = measured_values(item)
        if not values or item.visibility != "visible":
            continue
        found = thresholds(item)
        awarded = item.score / item.max_score if item.max_score else None
        card = [f'<div class="card" data-item="{esc(item.name)}"><h3>{esc(item.name)}</h3>']
        rows = []
        for key, value in values.items():
            t = found.get(key)
            if t is not None and t.kind == "curve":
                card.append(f'<div class="measure" data-key="{esc(key)}" '
                            f'data-value="{esc(value)}" data-kind="curve" '
                            f'data-zero-at="{esc(t.zero_at)}" data-full-at="{esc(t.full_at)}">'
                            f'<div><b>{esc(key)}</b> = {esc(num(value))} — 0 points at '
                            f'{esc(num(t.zero_at))}, full points at {esc(num(t.full_at))}</div>'
                            f'{_svg_curve(float(value), t, awarded, item.name, key)}</div>')
            elif t is not None:
                card.append(f'<div class="measure" data-key="{esc(key)}" '
                            f'data-value="{esc(value)}" data-kind="{t.kind}" '
                            f'data-limit="{esc(t.limit)}"><div><b>{esc(key)}</b> = '
                            f'{esc(num(value))} ({t.kind} {esc(num(t.limit))})</div>'
                            f'{_svg_limit(float(value), t, item.name, key)}</div>')
            else:
                raw = value if _is_number(value) else _format_value(value)
                rows.append(f'<tr class="measure" data-key="{esc(key)}" '
                            f'data-value="{esc(raw)}"><td>{esc(key)}</td>'
                            f'<td class="num">{esc(_format_value(value, key))}</td></tr>')
        if rows:
            card.append("<table><tbody>" + "".join(rows) + "</tbody></table>")
        card.append("</div>")
        cards.append("".join(card))
    if cards:
        out.append('<h2 id="measurements">Measurements</h2>')
        out.extend(cards)
    out.append('<p class="meta">labgrade report · the same result as grade.json, '
               'classroom.json and results.json in this folder.</p></body></html>')
    return "\n".join(out) + "\n"


def render_safely(result: LabResult) -> str:
    """Never let the HTML page break grading: on any bug, a minimal page that says so."""
    try:
        return render(result)
    except Exception as exc:  # noqa: BLE001
        return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
                f"{esc(result.lab_id)}</title></head><body><h1>{esc(result.lab_id)}: "
                f"{esc(num(result.score))}/{esc(num(result.max_score))}</h1><p>The detailed "
                f"report could not be drawn ({esc(type(exc).__name__)}: {esc(exc)}); "
                "grade.json holds the full result.</p></body></html>\n")
