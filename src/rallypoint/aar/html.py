"""The report as one self-contained HTML file: inline CSS and SVG, no script, no external request.

Every string that came from history (callsigns, uids, inject ids, team names, audit actors) is
escaped with ``html.escape`` before it is written.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from statistics import median

from rallypoint.aar.model import Inject, LinkStats, Report, TeamSummary, TimelineEntry
from rallypoint.aar.svg import BASEMAP, NO_MAP, MapFrame, legend

NONE = "\u2013"  # en dash: no value
MAX_SNAPSHOTS = 12

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d1d1d;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.sim td{color:#555}tr.total td{font-weight:600}.muted{color:#666}.map{width:100%;height:auto;border:1px solid #999}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:12px}.swatch{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:middle}dl.kv{display:grid;grid-template-columns:max-content auto;
gap:2px 12px}dl.kv dt{font-weight:600}dl.kv dd{margin:0}
.snaps{display:grid;grid-template-columns:1fr 1fr;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#444}
@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}
"""


def utc(ms: int) -> str:
    """``2026-12-07 06:30:01Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def seconds(ms: float | None) -> str:
    """Milliseconds as seconds with one decimal, or a dash."""
    return NONE if ms is None else f"{ms / 1000:.1f} s"


def _cells(values: Iterable[object], numeric: Sequence[bool] = ()) -> str:
    out = []
    for i, value in enumerate(values):
        cls = ' class="n"' if i < len(numeric) and numeric[i] else ""
        out.append(f"<td{cls}>{escape(str(value))}</td>")
    return "".join(out)


def _table(head: Sequence[str], rows: Iterable[str]) -> str:
    body = "".join(rows)
    if not body:
        return '<p class="muted">None in the window.</p>'
    return ("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + body + "</tbody></table>")


def _injects(injects: Sequence[Inject]) -> str:
    head = ("inject", "kind", "unit", "at (UTC)", "exercise", "awaits", "target", "first response", "by", "after")
    rows = []
    for inj in injects:
        r = inj.response
        rows.append("<tr>" + _cells(
            (inj.id, inj.kind or inj.type, inj.unit, utc(inj.at_ms), inj.exercise, inj.awaits or NONE,
             inj.target or NONE, f"{r.what} ({r.source})" if r else "none", r.by if r else NONE,
             seconds(inj.latency_ms)),
            (False,) * 9 + (True,)) + "</tr>")
    return _table(head, rows)


def _timeline(entries: Sequence[TimelineEntry], start_ms: int, cut: int) -> str:
    rows = [f'<tr class="{"sim" if e.simulated else "live"}">'
            + _cells((utc(e.at_ms), f"T+{seconds(e.at_ms - start_ms)}", e.what, e.detail,
                      "exercise" if e.simulated else "live"))
            + "</tr>" for e in entries]
    note = f'<p class="muted">{cut} further entries left out.</p>' if cut else ""
    return _table(("at (UTC)", "since start", "what", "detail", "source"), rows) + note


def _links(links: Sequence[LinkStats]) -> str:
    numeric = (False,) * 5 + (True,) * 7
    rows = [f'<tr class="{"sim" if s.simulated else "live"}">' + _cells(
        (s.callsign or NONE, s.uid, s.team, s.unit or NONE, "exercise" if s.simulated else "live", s.sent, s.delivered,
         s.late, s.lost, seconds(s.interval_ms), seconds(s.mean_delay_ms), seconds(s.max_delay_ms)), numeric) + "</tr>"
        for s in links]
    if links:
        sent = sum(s.sent for s in links)
        delivered = sum(s.delivered for s in links)
        ratio = f"{100 * delivered / sent:.1f} %" if sent else NONE
        rows.append('<tr class="total">' + _cells(
            ("all links", f"{len(links)} units", "", "", ratio, sent, delivered, sum(s.late for s in links),
             sum(s.lost for s in links), "", "", ""), numeric) + "</tr>")
    head = ("callsign", "uid", "team", "scenario unit", "source", "sent", "delivered", "late", "lost", "interval",
            "mean delay", "max delay")
    return _table(head, rows)


def _teams(teams: Sequence[TeamSummary]) -> str:
    rows = ["<tr>" + _cells((t.team, t.simulated_units, t.live_units, f"{t.distance_m / 1000:.2f}", t.reports,
                             t.emergencies, t.tasks), (False,) + (True,) * 6) + "</tr>" for t in teams]
    return _table(("team", "simulated units", "live units", "distance (km)", "reports", "emergencies", "tasks"), rows)


def _maps(report: Report, title: str, basemap: Path) -> str:
    """The whole window's map, then a snapshot at each inject (the first ``MAX_SNAPSHOTS``)."""
    if report.bbox is None:
        return "<h2>Map</h2>" + NO_MAP
    frame = MapFrame(report.tracks, report.bbox, basemap=basemap)
    parts = ["<h2>Map</h2>", frame.svg(report.tracks, title=title), legend(t.team for t in report.tracks),
             '<p class="muted">Dashed tracks: simulated units. Dots: last position.</p>']
    shown = report.injects[:MAX_SNAPSHOTS]
    if shown:
        parts.append("<h2>Map at each inject</h2><p class=\"muted\">Tracks as reported up to the inject;"
                     " the red diamond is where the inject happened (when its event had a position).</p>"
                     '<div class="snaps">')
        for inj in shown:
            caption = (f"{inj.id} ({inj.kind or inj.type}) at {utc(inj.at_ms)},"
                       f" T+{seconds(inj.at_ms - report.since_ms)}")
            tracks = [t.until(inj.at_ms) for t in report.tracks]
            parts.append(f"<figure>{frame.svg(tracks, title=caption, mark=inj.where, mark_label=inj.id)}"
                         f"<figcaption>{escape(caption)}</figcaption></figure>")
        parts.append("</div>")
        if len(report.injects) > MAX_SNAPSHOTS:
            parts.append(f'<p class="muted">{len(report.injects) - MAX_SNAPSHOTS} further injects without a map.</p>')
    return "".join(parts)


def _summary(report: Report) -> str:
    measured = [inj.latency_ms for inj in report.injects if inj.awaits]
    answered = [ms for ms in measured if ms is not None]
    pairs = [
        ("exercise", report.exercise or "every exercise in the window"),
        ("window (UTC)", f"{utc(report.since_ms)} to {utc(report.until_ms)}"),
        ("exercises seen", ", ".join(report.exercises_seen) or "none"),
        ("events", f"{report.rows_kept} in the report, {report.rows_other_exercises} of other exercises left out,"
                   f" {report.rows_read} read"),
        ("injects", f"{len(report.injects)}, of which {len(measured)} await a response,"
                    f" {len(answered)} answered"),
        ("median time to respond", seconds(median(answered)) if answered else NONE),
        ("late means", f"stored more than {report.late_ms / 1000:g} s after its own time"),
    ]
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"


def render_html(report: Report, *, generated_ms: int, basemap: Path = BASEMAP) -> str:
    """The whole report page."""
    title = f"After-action report: {report.exercise or 'exercises'}"
    return "".join((
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1><p class=\"muted\">Generated {escape(utc(generated_ms))} from stored history"
        " and the audit log. Figures are defined in docs/exercises.md (After-action report).</p>",
        _summary(report),
        _maps(report, title, basemap),
        "<h2>Injects and first responses</h2>", _injects(report.injects),
        "<h2>Timeline</h2>", _timeline(report.timeline, report.since_ms, report.timeline_cut),
        "<h2>Message delivery per link</h2>",
        "<p class=\"muted\">A link is one unit's position reports to the server. Sent = delivered + lost;"
        " lost is estimated from gaps in the unit's own reporting rhythm.</p>",
        _links(report.links),
        "<h2>Per team</h2>", _teams(report.teams),
        "</body></html>\n",
    ))
