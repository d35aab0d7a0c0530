"""Inline SVG charts for the audit report, drawn with no library and no script.

Each mark carries its number as data attributes (``data-day``,
``data-status``, ``data-count``, …) so tests and other tools can read the
figures back from the markup, and a ``<title>`` so a browser shows it on
hover. Every piece of text from an entry goes through ``esc``: the charts are
inline in HTML, and producer names and key ids are attacker-influenced.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from html import escape

from .gather import CATEGORIES, STATUSES, ProducerStats, RegistryEvent
from .strings import Words

STATUS_ORDER = ("verified", "declared", "none", "unverified", "invalid", "other")  # bottom to top
STATUS_COLOR = {
    "verified": "#1a7f37", "declared": "#0969da", "none": "#8c959f",
    "unverified": "#d4a72c", "invalid": "#cf222e", "other": "#6e7781",
}
CATEGORY_COLOR = {"confirmed": "#8250df", "possible": "#0969da", "suspected": "#d4a72c", "none": "#afb8c1"}
ACTION_COLOR = {"add": "#1a7f37", "revoke": "#cf222e", "other": "#6e7781"}
WIDTH = 1120
FONT = 12
MAX_DAY_BUCKETS = 62
MAX_WEEK_BUCKETS = 106
PRODUCER_ROWS = 12


def esc(value) -> str:
    return escape(str(value), quote=True)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: int, height: int, label: str, body: list[str], cls: str) -> str:
    return (f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="{esc(label)}" font-size="{FONT}">' + "".join(body) + "</svg>")


def nice_step(top: int, ticks: int = 5) -> int:
    """A 1-2-5 step so that ``ticks`` steps cover ``top``."""
    if top <= ticks:
        return 1
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return int(m * mag)
    return int(10 * mag)


# --- verifications over time --------------------------------------------------


def buckets(by_day: dict[str, Counter]) -> tuple[str, list[tuple[str, Counter]]]:
    """Day counters grouped into ``day``, ``week`` or ``month`` buckets with no
    gaps (an empty bucket is a real zero), plus an ``unknown`` bucket last."""
    days, rest = {}, Counter()
    for key, counts in by_day.items():
        try:
            days[date.fromisoformat(key)] = counts
        except ValueError:
            rest.update(counts)
    out: list[tuple[str, Counter]] = []
    unit = "day"
    if days:
        first, last = min(days), max(days)
        span = (last - first).days + 1
        unit = "day" if span <= MAX_DAY_BUCKETS else "week" if span <= MAX_WEEK_BUCKETS * 7 else "month"
        start = _bucket_start(first, unit)
        grouped: dict[date, Counter] = {}
        for day, counts in days.items():
            grouped.setdefault(_bucket_start(day, unit), Counter()).update(counts)
        d = start
        while d <= last:
            out.append((d.isoformat(), grouped.get(d, Counter())))
            d = _next_bucket(d, unit)
    if rest:
        out.append(("unknown", rest))
    return unit, out


def _bucket_start(d: date, unit: str) -> date:
    if unit == "week":
        return d - timedelta(days=d.weekday())
    if unit == "month":
        return d.replace(day=1)
    return d


def _next_bucket(d: date, unit: str) -> date:
    if unit == "day":
        return d + timedelta(days=1)
    if unit == "week":
        return d + timedelta(days=7)
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def daily_chart(by_day: dict[str, Counter], w: Words) -> tuple[str, str]:
    """Stacked bars of verifications per bucket by status; returns (unit, svg)."""
    unit, rows = buckets(by_day)
    height, left, right, top, bottom = 300, 56, 16, 16, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max((sum(c.values()) for _, c in rows), default=0)
    step = nice_step(max(peak, 1))
    y_max = step * math.ceil(max(peak, 1) / step)
    body = [f'<g class="grid" data-max="{y_max}">']
    for v in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * v / y_max
        body.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dee4" '
                    f'stroke-width="1"/><text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#57606a">{v}</text>')
    body.append("</g>")
    n = max(len(rows), 1)
    slot = plot_w / n
    bar = min(44.0, slot * 0.72)
    label_every = max(1, math.ceil(n / 14))
    for i, (key, counts) in enumerate(rows):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        total = sum(counts.values())
        body.append(f'<g class="bar" data-day="{esc(key)}" data-unit="{unit}" data-total="{total}">')
        for status in STATUS_ORDER:
            count = counts.get(status, 0)
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{STATUS_COLOR[status]}" '
                f'data-day="{esc(key)}" data-status="{status}" data-count="{count}">'
                f"<title>{esc(key)} · {esc(w.status(status))}: {count}</title></rect>")
        body.append("</g>")
        if i % label_every == 0 or i == n - 1 and n <= 14:
            body.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                        f'fill="#57606a">{esc(key[5:] if unit == "day" and key != "unknown" else key)}</text>')
    body.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8c959f"/>')
    return unit, _svg(WIDTH, height, w("daily_title", bucket=w("bucket_" + unit)), body, "daily")


# --- producers ----------------------------------------------------------------


def ranked_producers(producers: dict[str, ProducerStats]) -> list[tuple[str, ProducerStats]]:
    """Keys with at least one invalid or mismatched label, worst first."""
    bad = [(k, s) for k, s in producers.items() if s.invalid or s.mismatch]
    bad.sort(key=lambda ks: (-ks[1].invalid, -ks[1].mismatch, -ks[1].total, ks[0]))
    return bad


def producers_chart(rows: list[tuple[str, ProducerStats]], names: dict[str, str], revoked: set[str],
                    w: Words) -> str:
    """Paired horizontal bars (invalid, content mismatch) per producer key."""
    rows = rows[:PRODUCER_ROWS]
    row_h, top, label_w, right = 46, 8, 340, 150
    height = top + row_h * len(rows) + 8
    peak = max((max(s.invalid, s.mismatch) for _, s in rows), default=1) or 1
    span = WIDTH - label_w - right
    body = []
    for i, (key_id, s) in enumerate(rows):
        y = top + row_h * i
        name = names.get(key_id)
        body.append(f'<g class="producer" data-key-id="{esc(key_id)}" data-invalid="{s.invalid}" '
                    f'data-mismatch="{s.mismatch}" data-total="{s.total}">')
        if i % 2 == 0:
            body.append(f'<rect x="0" y="{y - 3}" width="{WIDTH}" height="{row_h}" fill="#f6f8fa"/>')
        title = name if name else w("unregistered")
        body.append(f'<text x="8" y="{y + 15}" font-weight="600" fill="{"#1f2328" if name else "#6e7781"}">'
                    f"{esc(cut(title, 44))}<title>{esc(title)}</title></text>")
        tag = (f'<tspan fill="{STATUS_COLOR["invalid"]}" font-family="inherit" font-weight="600"> · '
               f'{esc(w("revoked_tag"))}</tspan>') if key_id in revoked else ""
        body.append(f'<text x="8" y="{y + 32}" fill="#6e7781" font-family="ui-monospace,monospace" font-size="11">'
                    f"{esc(cut(key_id, 44))}{tag}</text>")
        for k, (what, count, color) in enumerate((("invalid", s.invalid, STATUS_COLOR["invalid"]),
                                                   ("mismatch", s.mismatch, "#e16f24"))):
            by = y + 4 + k * 18
            bw = max(span * count / peak, 1.5 if count else 0)
            body.append(f'<rect x="{label_w}" y="{by}" width="{bw:.1f}" height="14" rx="2" fill="{color}" '
                        f'data-measure="{what}" data-count="{count}"><title>{esc(w("legend_" + what))}: {count}'
                        f"</title></rect>")
            body.append(f'<text x="{label_w + bw + 6:.1f}" y="{by + 11}" fill="#1f2328">{count}</text>')
        body.append(f'<text x="{WIDTH - 8}" y="{y + 22}" text-anchor="end" fill="#57606a">'
                    f'{esc(w("of_total", n=s.total))}</text></g>')
    return _svg(WIDTH, height, w("producers_title"), body, "producers")


# --- categories -----------------------------------------------------------------


def category_chart(by_category: Counter, w: Words) -> str:
    """A donut of the share of each category, with a legend of counts."""
    total = sum(by_category.get(c, 0) for c in CATEGORIES)
    width, height, cx, cy, r, stroke = 560, 240, 120, 120, 82, 34
    circ = 2 * math.pi * r
    body = [f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="#eaeef2" stroke-width="{stroke}"/>']
    offset = 0.0
    for cat in CATEGORIES:
        count = by_category.get(cat, 0)
        if not count:
            continue
        length = circ * count / total
        body.append(
            f'<circle class="slice" cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{CATEGORY_COLOR[cat]}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.3f} {circ - length:.3f}" '
            f'stroke-dashoffset="{-offset:.3f}" transform="rotate(-90 {cx} {cy})" data-category="{cat}" '
            f'data-count="{count}"><title>{esc(w.category(cat))}: {count}</title></circle>')
        offset += length
    body.append(f'<text x="{cx}" y="{cy + 2}" text-anchor="middle" font-size="26" font-weight="600" '
                f'fill="#1f2328" data-total="{total}">{total}</text>'
                f'<text x="{cx}" y="{cy + 22}" text-anchor="middle" fill="#57606a">{esc(w("verifications"))}</text>')
    for i, cat in enumerate(CATEGORIES):
        count = by_category.get(cat, 0)
        pct = 100 * count / total if total else 0
        y = 58 + i * 38
        body.append(
            f'<g class="legend" data-category="{cat}" data-count="{count}" data-share="{pct:.1f}">'
            f'<rect x="250" y="{y - 12}" width="16" height="16" rx="3" fill="{CATEGORY_COLOR[cat]}"/>'
            f'<text x="276" y="{y + 1}" fill="#1f2328">{esc(w.category(cat))}</text>'
            f'<text x="{width - 8}" y="{y + 1}" text-anchor="end" fill="#1f2328" font-weight="600">{count}'
            f'<tspan fill="#57606a" font-weight="400"> · {pct:.1f}%</tspan></text></g>')
    return _svg(width, height, w("categories_title"), body, "categories")


# --- registry time line ----------------------------------------------------------


def _when(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def timeline_chart(events: list[RegistryEvent], w: Words) -> str:
    """Registry changes on a time axis: a dot per added key, a diamond per revocation."""
    timed = [(t, e) for e in events if (t := _when(e.time)) is not None]
    lanes, lane_h, left, right = 4, 22, 24, 24
    axis_y = 20 + lanes * lane_h + 16
    height = axis_y + 40
    if timed:
        t0, t1 = min(t for t, _ in timed), max(t for t, _ in timed)
    else:
        t0 = t1 = datetime.now(timezone.utc)
    if (t1 - t0).total_seconds() < 86400:
        t0, t1 = t0 - timedelta(hours=12), t1 + timedelta(hours=12)
    span = (t1 - t0).total_seconds()
    plot_w = WIDTH - left - right

    def x_of(t: datetime) -> float:
        return left + plot_w * (t - t0).total_seconds() / span

    body = [f'<line x1="{left}" x2="{WIDTH - right}" y1="{axis_y}" y2="{axis_y}" stroke="#8c959f" stroke-width="1.5"/>']
    for k in range(6):
        t = t0 + timedelta(seconds=span * k / 5)
        x = x_of(t)
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 5}" stroke="#8c959f"/>'
                    f'<text x="{x:.1f}" y="{axis_y + 20}" text-anchor="{anchor}" fill="#57606a">'
                    f'{t.strftime("%Y-%m-%d %H:%M")}</text>')
    for i, (t, e) in enumerate(sorted(timed, key=lambda te: (te[0], te[1].index))):
        x = x_of(t)
        lane_y = 20 + (i % lanes) * lane_h
        color = ACTION_COLOR[e.action]
        label = cut(e.name or e.key_id, 26)
        anchor = "end" if x > WIDTH - 200 else "start"
        dx = -6 if anchor == "end" else 6
        what = w("action_" + e.action)
        body.append(f'<g class="event" data-action="{e.action}" data-time="{esc(e.time)}" '
                    f'data-key-id="{esc(e.key_id)}" data-index="{e.index}">'
                    f"<title>{esc(e.time)} · {esc(what)} · {esc(e.name)} ({esc(e.key_id)})</title>"
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{lane_y + 4}" y2="{axis_y}" stroke="{color}" '
                    f'stroke-opacity="0.45" stroke-dasharray="2 2"/>')
        if e.action == "revoke":
            body.append(f'<rect x="{x - 6:.1f}" y="{axis_y - 6}" width="12" height="12" fill="{color}" '
                        f'transform="rotate(45 {x:.1f} {axis_y})"/>')
        else:
            body.append(f'<circle cx="{x:.1f}" cy="{axis_y}" r="6.5" fill="{color}" stroke="#fff" stroke-width="1.5"/>')
        body.append(f'<text x="{x + dx:.1f}" y="{lane_y + 8}" text-anchor="{anchor}" fill="{color}" '
                    f'font-weight="600">{esc(label)}</text></g>')
    return _svg(WIDTH, height, w("timeline_title"), body, "timeline")


__all__ = ["STATUSES", "buckets", "category_chart", "daily_chart", "producers_chart", "ranked_producers",
           "timeline_chart"]
