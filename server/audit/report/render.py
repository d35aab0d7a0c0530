"""The audit report as one offline HTML file: inline CSS, inline SVG, no script.

A Content-Security-Policy meta tag (``default-src 'none'``) makes the promise
checkable: a browser opening the file loads nothing from anywhere and runs no
script, even if an escaping bug let markup through. Every value that comes
from a ledger entry is escaped with ``esc`` where it is written.
"""

from __future__ import annotations

from datetime import datetime, timezone

from labelcheck.util import b64

from . import svg
from .gather import PASSING_REASONS, STATUSES, AuditData
from .strings import Words
from .svg import STATUS_COLOR, STATUS_ORDER, esc

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --fg:#1f2328; --muted:#57606a; --line:#d0d7de; --soft:#f6f8fa; --ok:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { margin:0; background:#eef1f4; color:var(--fg);
  font:14px/1.5 -apple-system,"Segoe UI","Noto Sans","Helvetica Neue",Arial,"Noto Sans CJK SC",
  "Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif; }
main { max-width:1180px; margin:0 auto; padding:28px 24px 40px; }
header.top { background:#0d2238; color:#fff; border-radius:10px; padding:22px 26px; margin-bottom:18px; }
header.top h1 { margin:0 0 2px; font-size:24px; font-weight:650; letter-spacing:.2px; }
header.top p { margin:0; color:#c9d4e0; }
header.top dl { display:flex; flex-wrap:wrap; gap:6px 28px; margin:14px 0 0; }
header.top dt { color:#9fb3c8; font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
header.top dd { margin:0; font-variant-numeric:tabular-nums; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:0 0 18px; }
h2 { font-size:17px; margin:0 0 12px; font-weight:650; }
.proof { border-left:5px solid var(--ok); }
.proof .verdict { color:var(--ok); font-weight:600; margin:0 0 10px; }
table.kv { border-collapse:collapse; width:100%; }
table.kv th { text-align:left; color:var(--muted); font-weight:500; width:190px; padding:4px 12px 4px 0; vertical-align:top; }
table.kv td { padding:4px 0; word-break:break-all; }
.mono, code { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace; font-size:12.5px; }
.note { color:var(--muted); font-size:13px; margin:8px 0 0; }
.warn { background:#fff8c5; border:1px solid #eac54f; border-radius:6px; padding:8px 12px; margin-top:10px; font-size:13px; }
.cards { display:grid; grid-template-columns:repeat(5,1fr); gap:12px; margin:0 0 18px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card .n { font-size:28px; font-weight:650; font-variant-numeric:tabular-nums; line-height:1.2; }
.card .l { color:var(--muted); font-size:13px; }
.card.bad .n { color:var(--bad); }
.card.warn-n .n { color:#bc4c00; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin:10px 0 0; padding:0; list-style:none; font-size:13px; }
.legend li { display:flex; align-items:center; gap:6px; }
.sw { display:inline-block; width:12px; height:12px; border-radius:3px; }
.legend b { font-variant-numeric:tabular-nums; }
.row { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,1fr); gap:18px; }
.row section { margin:0 0 18px; }
svg.chart { display:block; max-width:100%; height:auto; font-family:inherit; }
table.data { border-collapse:collapse; width:100%; font-size:13px; }
table.data th { text-align:left; font-weight:600; color:var(--muted); border-bottom:2px solid var(--line);
  padding:6px 8px; white-space:nowrap; }
table.data td { border-bottom:1px solid #eaeef2; padding:7px 8px; vertical-align:top; }
table.data tr:nth-child(even) td { background:#fafbfc; }
td.num, table.data th.num { text-align:right; font-variant-numeric:tabular-nums; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; color:#fff; font-size:12px; font-weight:600; white-space:nowrap; }
.chip { display:inline-block; background:#eaeef2; border-radius:4px; padding:0 6px; margin:1px 3px 1px 0; font-size:12px; }
.chip.fail { background:#ffebe9; color:#a40e26; }
.receipt { font-size:11.5px; color:var(--muted); word-break:break-all; min-width:190px; }
td.when { white-space:nowrap; }
.receipt b { color:var(--fg); }
.empty { color:var(--muted); font-style:italic; margin:4px 0; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:8px; }
@media print { body { background:#fff; } section, .card { break-inside:avoid; } }
"""


def render(data: AuditData, lang: str, *, now: datetime | None = None) -> str:
    """The whole report for ``data`` in ``lang`` (``en`` or ``zh-CN``)."""
    w = Words(lang)
    now = now or datetime.now(timezone.utc)
    parts = [
        _head(w),
        "<body><main>",
        _banner(data, w, now),
        _proof(data, w),
        _cards(data, w),
        _daily(data, w),
        _producers(data, w),
        '<div class="row">', _categories(data, w), _statuses(data, w), "</div>",
        _timeline(data, w),
        _worst(data, w),
        f'<footer>{esc(w("footer"))}</footer>',
        "</main></body></html>\n",
    ]
    return "".join(parts)


def _head(w: Words) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{esc(w.lang)}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(w('title'))}</title><style>{CSS}</style></head>")


def _banner(data: AuditData, w: Words, now: datetime) -> str:
    period = (f"{_when(data.first_time)} — {_when(data.last_time)} UTC" if data.first_time else w("no_period"))
    return (f'<header class="top"><h1>{esc(w("title"))}</h1><p>{esc(w("subtitle"))}</p><dl>'
            f'<div><dt>{esc(w("origin"))}</dt><dd class="mono">{esc(data.checkpoint.origin)}</dd></div>'
            f'<div><dt>{esc(w("period"))}</dt><dd>{esc(period)}</dd></div>'
            f'<div><dt>{esc(w("generated"))}</dt><dd>{now.strftime("%Y-%m-%d %H:%M:%S")} UTC</dd></div>'
            "</dl></header>")


def _proof(data: AuditData, w: Words) -> str:
    cp = data.checkpoint
    if data.complete:
        kind = (w("bundle_complete", n=cp.size, last=cp.size - 1) if cp.size else w("bundle_complete_empty"))
    else:
        kind = w("bundle_filtered", m=data.entries, n=cp.size)
    rows = [(w("bundle_kind"), esc(kind), "")]
    if not data.complete:
        filt = "; ".join(f"{k} = {_plain(v)}" for k, v in sorted(data.filter.items())) or "—"
        rows.append((w("filter"), esc(filt), "mono"))
    trusted = (w("trusted_ok", n=data.trusted_size) if data.trusted_size is not None else w("trusted_none"))
    rows += [
        (w("origin"), esc(cp.origin), "mono"),
        (w("size"), str(cp.size), "mono"),
        (w("root"), esc(b64.encode(cp.root)), "mono"),
        (w("key_id"), esc(data.key_id), "mono"),
        (w("vkey"), esc(data.vkey), "mono"),
        (w("trusted"), esc(trusted), ""),
    ]
    body = "".join(f'<tr><th>{esc(k)}</th><td class="{cls}">{v}</td></tr>' for k, v, cls in rows)
    warn = "" if data.complete else f'<p class="warn">{esc(w("filtered_note"))}</p>'
    return (f'<section class="proof" data-complete="{str(data.complete).lower()}" data-size="{cp.size}" '
            f'data-entries="{data.entries}"><h2>{esc(w("proof_title"))}</h2>'
            f'<p class="verdict">✓ {esc(w("proof_ok"))}</p>'
            f'<table class="kv">{body}</table>{warn}</section>')


def _when(time: str) -> str:
    """``2025-06-01 08:00:00`` for an RFC 3339 UTC time (the column says UTC); anything else as is."""
    if len(time) == 20 and time[10] == "T" and time.endswith("Z"):
        return time[:10] + " " + time[11:19]
    return time


def _plain(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if value is None:
        return "—"
    return str(value)[:200]


def _cards(data: AuditData, w: Words) -> str:
    cards = [
        ("entries", w("entries"), data.entries, ""),
        ("verifications", w("verifications"), data.verifications, ""),
        ("invalid", w("invalid_total"), data.by_status.get("invalid", 0), "bad"),
        ("content_mismatch", w("mismatch_total"), data.mismatches, "warn-n"),
        ("registry", w("registry_events"), data.registry_events, ""),
    ]
    if data.claims:  # a registry in use (docs/protocol.md §12)
        cards.append(("claims", w("claims_published"), data.claims, ""))
    body = "".join(f'<div class="card {cls}" data-metric="{key}" data-count="{n}"><div class="n">{n:,}</div>'
                   f'<div class="l">{esc(label)}</div></div>' for key, label, n, cls in cards)
    other = sum(data.other_kinds.values())
    note = f'<p class="note">{esc(w("other_entries", n=other))}</p>' if other else ""
    return f'<div class="cards">{body}</div>{note}'


def _status_legend(data: AuditData, w: Words) -> str:
    items = []
    for status in reversed(STATUS_ORDER):
        count = data.by_status.get(status, 0)
        if status == "other" and not count:
            continue
        items.append(f'<li data-status="{status}" data-count="{count}"><span class="sw" '
                     f'style="background:{STATUS_COLOR[status]}"></span>{esc(w.status(status))} <b>{count:,}</b></li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def _daily(data: AuditData, w: Words) -> str:
    unit, chart = svg.daily_chart(data.by_day, w)
    title = w("daily_title", bucket=w("bucket_" + unit))
    inner = chart + _status_legend(data, w) if data.verifications else f'<p class="empty">{esc(w("no_data"))}</p>'
    return f'<section id="daily"><h2>{esc(title)}</h2>{inner}</section>'


def _producers(data: AuditData, w: Words) -> str:
    rows = svg.ranked_producers(data.producers)
    if rows:
        inner = svg.producers_chart(rows, data.names, data.revoked, w)
        inner += (f'<ul class="legend"><li><span class="sw" style="background:{STATUS_COLOR["invalid"]}"></span>'
                  f'{esc(w("legend_invalid"))}</li><li><span class="sw" style="background:#e16f24"></span>'
                  f'{esc(w("legend_mismatch"))}</li></ul>')
        if len(rows) > svg.PRODUCER_ROWS:
            inner += f'<p class="note">{esc(w("producers_more", n=len(rows) - svg.PRODUCER_ROWS))}</p>'
    else:
        inner = f'<p class="empty">{esc(w("producers_none"))}</p>'
    if data.keys_overflow:
        inner += f'<p class="note">{esc(w("producers_overflow", n=data.keys_overflow, cap=len(data.producers)))}</p>'
    return f'<section id="producers"><h2>{esc(w("producers_title"))}</h2>{inner}</section>'


def _categories(data: AuditData, w: Words) -> str:
    inner = (svg.category_chart(data.by_category, w) if data.verifications
             else f'<p class="empty">{esc(w("no_data"))}</p>')
    return f'<section id="categories"><h2>{esc(w("categories_title"))}</h2>{inner}</section>'


def _statuses(data: AuditData, w: Words) -> str:
    total = data.verifications
    rows = []
    for status in (*STATUSES, "other"):
        count = data.by_status.get(status, 0)
        if status == "other" and not count:
            continue
        pct = f"{100 * count / total:.1f}%" if total else "—"
        rows.append(f'<tr data-status="{status}" data-count="{count}"><td><span class="badge" '
                    f'style="background:{STATUS_COLOR[status]}">{esc(w.status(status))}</span></td>'
                    f'<td class="num">{count:,}</td><td class="num">{pct}</td></tr>')
    head = (f'<tr><th>{esc(w("col_status"))}</th><th class="num">{esc(w("count"))}</th>'
            f'<th class="num">{esc(w("share"))}</th></tr>')
    return (f'<section id="statuses"><h2>{esc(w("verifications"))}</h2>'
            f'<table class="data">{head}{"".join(rows)}</table></section>')


def _timeline(data: AuditData, w: Words) -> str:
    if not data.events:
        return (f'<section id="timeline"><h2>{esc(w("timeline_title"))}</h2>'
                f'<p class="empty">{esc(w("timeline_none"))}</p></section>')
    chart = svg.timeline_chart(data.events, w)
    legend = (f'<ul class="legend"><li><span class="sw" style="background:{svg.ACTION_COLOR["add"]};'
              f'border-radius:50%"></span>{esc(w("action_add"))}</li><li><span class="sw" '
              f'style="background:{svg.ACTION_COLOR["revoke"]};transform:rotate(45deg)"></span>'
              f'{esc(w("action_revoke"))}</li></ul>')
    more = ""
    if data.registry_events > len(data.events):
        more = f'<p class="note">{esc(w("timeline_more", cap=len(data.events), n=data.registry_events))}</p>'
    head = "".join(f"<th>{esc(w(k))}</th>" for k in ("col_time", "col_action", "col_producer", "key_id",
                                                     "col_filing", "col_receipt"))
    rows = "".join(
        f'<tr class="event" data-action="{e.action}" data-index="{e.index}"><td class="mono when">{esc(_when(e.time))}</td>'
        f'<td><span class="badge" style="background:{svg.ACTION_COLOR[e.action]}">{esc(w("action_" + e.action))}'
        f'</span></td><td>{esc(e.name)}</td><td class="mono">{esc(e.key_id)}</td>'
        f'<td>{esc(e.filing or w("none_value"))}</td><td class="mono">{esc(w("index"))} {e.index}</td></tr>'
        for e in data.events)
    return (f'<section id="timeline"><h2>{esc(w("timeline_title"))}</h2>{chart}{legend}{more}'
            f'<table class="data">{head}{rows}</table></section>')


def _worst(data: AuditData, w: Words) -> str:
    title = f'<h2>{esc(w("worst_title"))}</h2>'
    if not data.worst:
        return f'<section id="worst">{title}<p class="empty">{esc(w("worst_none"))}</p></section>'
    intro = esc(w("worst_intro"))
    if data.bad_results > len(data.worst):
        intro += " " + esc(w("worst_more", k=len(data.worst), n=data.bad_results))
    head = "".join(f"<th>{esc(w(k))}</th>" for k in ("col_rank", "col_status", "col_category", "col_producer",
                                                     "col_reasons", "col_time", "col_page", "col_receipt"))
    rows = []
    for rank, item in enumerate(data.worst, 1):
        name = data.names.get(item.key_id) if item.key_id else None
        producer = (f"<div>{esc(name)}</div>" if name else "") + (
            f'<div class="mono">{esc(item.key_id)}</div>' if item.key_id else esc(w("none_value")))
        chips = "".join(
            f'<span class="chip{"" if r in PASSING_REASONS else " fail"}" title="{esc(r)}">{esc(w.reason(r))}</span>'
            for r in item.reasons) or esc(w("none_value"))
        rows.append(
            f'<tr class="worst" data-index="{item.index}" data-status="{item.status}" '
            f'data-leaf-hash="{esc(item.leaf_hash)}"><td class="num">{rank}</td>'
            f'<td><span class="badge" style="background:{STATUS_COLOR[item.status]}">{esc(w.status(item.status))}'
            f'</span></td><td>{esc(w.category(item.category))}</td><td>{producer}</td><td>{chips}</td>'
            f'<td class="mono when">{esc(_when(item.time))}</td>'
            f'<td class="mono">{esc(item.page_origin or w("none_value"))}</td>'
            f'<td class="receipt">{esc(w("index"))} <b>{item.index}</b><br>{esc(w("leaf_hash"))} '
            f'<span class="mono">{esc(item.leaf_hash)}</span></td></tr>')
    return (f'<section id="worst">{title}<p class="note" style="margin:0 0 10px">{intro}</p>'
            f'<table class="data">{head}{"".join(rows)}</table></section>')
