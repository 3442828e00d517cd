"""A plan as a standalone SVG sketch, north up: DZ, PI, CARP, run-in, green light, drift, footprint."""

from __future__ import annotations

import html

import numpy as np

from rallypoint.model.airdrop import AirdropPlan, GeoPoint
from rallypoint.services.airdrop.geometry import Array, to_local, unit

SIZE = 640
MARGIN = 48


def _local(plan: AirdropPlan, points: list[GeoPoint]) -> Array:
    if not points:
        return np.zeros((0, 2))
    east, north = to_local((plan.pi.lat, plan.pi.lon), np.array([p.lat for p in points]),
                           np.array([p.lon for p in points]))
    return np.stack([east, north], axis=1)


def render_svg(plan: AirdropPlan) -> str:
    """The SVG document (UTF-8 text) of ``plan``; scale bar in metres."""
    dz = _local(plan, plan.dz_polygon)
    carp = _local(plan, [plan.carp])[0]
    track = unit(plan.run_in_deg)
    green = _local(plan, [plan.green_light.start, plan.green_light.end]) if plan.green_light else np.zeros((0, 2))
    disp = plan.dispersion
    hits = _local(plan, disp.impacts) if disp else np.zeros((0, 2))
    centre = _local(plan, [disp.ellipse.center])[0] if disp else np.zeros(2)
    approach = carp - track * max(plan.forward_travel_m, 200.0)
    reach = max(disp.ellipse.semi_major_m, disp.r95_m) if disp else 0.0
    corners = np.array([centre + reach, centre - reach])
    pts = np.vstack([dz, [carp, approach, [0.0, 0.0]], green, hits, corners])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 50.0))
    scale = (SIZE - 2 * MARGIN) / span
    mid = (lo + hi) / 2.0

    def xy(p: Array) -> tuple[float, float]:
        return (SIZE / 2 + (float(p[0]) - float(mid[0])) * scale, SIZE / 2 - (float(p[1]) - float(mid[1])) * scale)

    def poly(points: Array) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, points))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">',
           "<title>Cargo airdrop plan (advisory)</title>",
           f'<rect width="{SIZE}" height="{SIZE}" fill="#fbfbf7"/>',
           f'<polygon points="{poly(dz)}" fill="#d8ecd0" stroke="#3c7a2e" stroke-width="2"/>']
    if disp:
        ex, ey = xy(centre)
        out.append(f'<ellipse cx="{ex:.1f}" cy="{ey:.1f}" rx="{disp.ellipse.semi_major_m * scale:.1f}" '
                   f'ry="{disp.ellipse.semi_minor_m * scale:.1f}" '
                   f'transform="rotate({disp.ellipse.orientation_deg - 90:.1f} {ex:.1f} {ey:.1f})" '
                   'fill="none" stroke="#b03a2e" stroke-dasharray="6 4" stroke-width="1.5"/>')
        out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5" fill="#b03a2e" fill-opacity="0.5"/>'
                   for x, y in map(xy, hits))
    ax, ay = xy(approach)
    cx, cy = xy(carp)
    out.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{cx:.1f}" y2="{cy:.1f}" stroke="#555" '
               'stroke-width="1.5" stroke-dasharray="3 3"/>')
    if len(green):
        (gx1, gy1), (gx2, gy2) = xy(green[0]), xy(green[1])
        out.append(f'<line x1="{gx1:.1f}" y1="{gy1:.1f}" x2="{gx2:.1f}" y2="{gy2:.1f}" stroke="#1f9d3a" '
                   'stroke-width="5" stroke-opacity="0.7"><title>green light</title></line>')
    px, py = xy(np.zeros(2))
    out += [f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{px:.1f}" y2="{py:.1f}" stroke="#2c5aa0" stroke-width="1"/>',
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#2c5aa0"/>',
            f'<text x="{cx + 9:.1f}" y="{cy - 9:.1f}" font-family="sans-serif" font-size="13">CARP</text>',
            f'<path d="M{px - 7:.1f},{py:.1f}H{px + 7:.1f}M{px:.1f},{py - 7:.1f}V{py + 7:.1f}" stroke="#000" '
            'stroke-width="2"/>',
            f'<text x="{px + 9:.1f}" y="{py + 16:.1f}" font-family="sans-serif" font-size="13">PI</text>']
    bar = 10 ** int(np.floor(np.log10(span / 3)))
    out += [f'<path d="M{MARGIN},{SIZE - 20}h{bar * scale:.1f}" stroke="#000" stroke-width="2"/>',
            f'<text x="{MARGIN}" y="{SIZE - 26}" font-family="sans-serif" font-size="12">{bar:g} m</text>',
            f'<text x="{SIZE - 30}" y="30" font-family="sans-serif" font-size="14">N&#8593;</text>']
    summary = (f"run-in {plan.run_in_deg:.0f}°, time of fall {plan.time_of_fall_s:.1f} s, "
               f"drift {plan.drift_distance_m:.0f} m" + (f", CEP {disp.cep_m:.0f} m" if disp else ""))
    out += [f'<text x="{MARGIN}" y="24" font-family="sans-serif" font-size="13">{html.escape(summary)}</text>',
            f'<text x="{MARGIN}" y="40" font-family="sans-serif" font-size="11" fill="#700">'
            f'{html.escape(plan.advisory.split(":")[0])}</text>',
            "</svg>"]
    return "\n".join(out) + "\n"
