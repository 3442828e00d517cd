"""A plan as a TAK data package (mission package v2 zip), and back.

Export: ``MANIFEST/manifest.xml`` plus one CoT file per drawing, stored as ``<uid>/<uid>.cot`` as
ATAK stores them (areas ``u-d-f``, routes ``b-m-r``, objectives ``b-m-p-s-m``, airdrop drawings),
so ATAK imports the overlays on opening the package; and ``plan.json``, the whole plan (phases,
assignments, resources included), marked ``ignore`` for TAK clients.

Import: the archive passes the same checks as any uploaded package (entry names, counts, sizes,
compression ratio, decompressed in full before use, manifest without DTD or entities). A
``plan.json`` is taken whole; without it, the plan is rebuilt from the CoT files (ATAK-made
packages too): ``u-d-f``/``u-d-r`` shapes become areas, ``b-m-r`` routes routes, ``b-m-p-*``
points objectives. Each CoT file is parsed with the hardened rules of the stream.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.model.plan import (
    MAX_ITEMS_PER_KIND,
    Area,
    Objective,
    Plan,
    Position,
    Route,
    Waypoint,
    items_of,
)
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import encode_event, parse_event
from rallypoint.protocol.xmlsafe import parse_fragment
from rallypoint.services.datapackages import MANIFEST_PATH, PackageLimits, PackageRejected, check_zip
from rallypoint.services.plans_cot import item_events
from rallypoint.services.plans_validate import PlanInvalid, check_plan, decode_plan

MEDIA_TYPE = "application/zip"
PLAN_ENTRY = "plan.json"
ZIP_COMMENT = b"Rallypoint operation plan. Mission Package version 2"
# A plan package is small: overlays and a JSON file.
LIMITS = PackageLimits(max_upload_bytes=32 * 1024 * 1024, max_uncompressed_bytes=64 * 1024 * 1024,
                       max_entries=4 * MAX_ITEMS_PER_KIND)
_COT_LIMITS = Limits(max_event_bytes=1024 * 1024, max_buffer_bytes=2 * 1024 * 1024)
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def to_package(plan_json: bytes, plan: Plan, *, prefix: str, name: str, now_ms: int) -> bytes:
    """The zip bytes of a data package holding ``plan`` (``plan_json`` is its JSON encoding)."""
    events: list[CotEvent] = []
    for kind, item in items_of(plan):
        events.extend(item_events(kind, item, prefix=prefix, now_ms=now_ms))
    contents = [f"<Content ignore='true' zipEntry='{PLAN_ENTRY}'><Parameter name='name' value='plan'/></Content>"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for event in events:
            entry = f"{event.uid}/{event.uid}.cot"
            zf.writestr(entry, b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n" + encode_event(event))
            contents.append(f"<Content ignore='false' zipEntry={quoteattr(entry)}>"
                            f"<Parameter name='uid' value={quoteattr(event.uid)}/></Content>")
        zf.writestr(PLAN_ENTRY, plan_json)
        manifest = (
            "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<MissionPackageManifest version='2'>"
            f"<Configuration><Parameter name='uid' value={quoteattr(prefix + '.package')}/>"
            f"<Parameter name='name' value={quoteattr(name)}/>"
            "<Parameter name='onReceiveDelete' value='false'/></Configuration>"
            f"<Contents>{''.join(contents)}</Contents></MissionPackageManifest>"
        )
        zf.writestr(MANIFEST_PATH, manifest)
        zf.comment = ZIP_COMMENT
    return out.getvalue()


def from_package(data: bytes) -> Plan:
    """A plan from a data package (``PlanInvalid`` with the reason). Blocking: run it in a worker thread."""
    if len(data) > LIMITS.max_upload_bytes:
        raise PlanInvalid(f"data package larger than {LIMITS.max_upload_bytes} bytes")
    with tempfile.TemporaryDirectory(prefix="rallypoint-plan-") as tmp:
        path = Path(tmp) / "package.zip"
        path.write_bytes(data)
        try:
            check_zip(path, LIMITS)
        except PackageRejected as exc:
            raise PlanInvalid(f"data package refused: {exc}") from exc
        with zipfile.ZipFile(path) as zf:
            names = {info.filename: info for info in zf.infolist() if not info.is_dir()}
            if PLAN_ENTRY in names:
                return decode_plan(zf.read(PLAN_ENTRY))
            cots = [n for n in sorted(names) if n.lower().endswith(".cot")]
            return _from_cot([(n, zf.read(n)) for n in cots])


def _from_cot(files: list[tuple[str, bytes]]) -> Plan:
    areas: list[Area] = []
    routes: list[Route] = []
    objectives: list[Objective] = []
    used: set[str] = set()
    for name, raw in files:
        try:
            event = parse_event(raw, _COT_LIMITS)
        except (RemoteProtocolError, LimitExceeded) as exc:
            raise PlanInvalid(f"{name}: not a CoT event we accept ({exc})") from exc
        item_id = _unique(_id_of(event.uid), used)
        label = event.detail.callsign or item_id
        detail = parse_fragment(event.detail.xml, _COT_LIMITS) if event.detail.xml.strip() else None
        remarks = (detail.findtext("remarks") or "").strip() if detail is not None else ""
        links = detail.findall("link") if detail is not None else []
        if event.type in ("u-d-f", "u-d-r"):
            ring = [_point(name, link.get("point", "")) for link in links if link.get("point")]
            if len(ring) > 1 and ring[0] == ring[-1]:
                ring.pop()
            areas.append(Area(id=item_id, name=label, description=remarks, vertices=tuple(ring)))
        elif event.type == "b-m-r":
            waypoints = []
            for link in links:
                if link.get("point"):
                    p = _point(name, link.get("point", ""))
                    waypoints.append(Waypoint(p.lat, p.lon, name=link.get("callsign", "")))
            routes.append(Route(id=item_id, name=label, description=remarks, waypoints=tuple(waypoints)))
        elif event.type.startswith("b-m-p"):
            objectives.append(Objective(id=item_id, name=label, description=remarks,
                                        point=Position(event.point.lat, event.point.lon)))
    return check_plan(Plan(areas=tuple(areas), routes=tuple(routes), objectives=tuple(objectives)))


def _point(name: str, text: str) -> Position:
    parts = text.split(",")
    try:
        return Position(float(parts[0]), float(parts[1]))
    except (ValueError, IndexError):
        raise PlanInvalid(f"{name}: link point {text[:60]!r} is not 'lat,lon'") from None


def _id_of(uid: str) -> str:
    """A plan item id from a CoT uid: ours (``rp-plan.<guid>.<id>``) give their id back."""
    if uid.startswith("rp-plan.") and uid.count(".") >= 2:
        uid = uid.split(".", 2)[2]
    return _ID_CHARS.sub("-", uid)[:60].strip("-._") or "item"


def _unique(base: str, used: set[str]) -> str:
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate
