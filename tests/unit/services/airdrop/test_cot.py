"""A plan as CoT: encoded with the server's codec, parsed back, shapes and points intact."""

from __future__ import annotations

import pytest
from lxml import etree

from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import encode_event, parse_event
from rallypoint.services.airdrop import plan
from rallypoint.services.airdrop.cot import plan_events
from tests.unit.services.airdrop.support import base, build

NOW_MS = 1_800_000_000_000


def test_release_point_dz_outline_and_footprint_round_trip() -> None:
    result = plan(build(base(), dispersion={"samples": 1000, "seed": 4}))
    events = plan_events(result, uid_prefix="airdrop-relief-1", name="Relief & <water>", now_ms=NOW_MS)
    parsed = [parse_event(encode_event(e), Limits()) for e in events]
    assert [(e.uid, e.type) for e in parsed] == [
        ("airdrop-relief-1.carp", "b-m-p-s-m"), ("airdrop-relief-1.dz", "u-d-f"),
        ("airdrop-relief-1.footprint", "u-d-c-e")]
    carp, dz, footprint = parsed
    assert (carp.point.lat, carp.point.lon) == (result.carp.lat, result.carp.lon)
    assert carp.detail.callsign == "Relief & <water> CARP"
    assert all(e.time == NOW_MS and e.stale == NOW_MS + 86_400_000 for e in parsed)

    detail = etree.fromstring(b"<detail>" + dz.detail.xml + b"</detail>")
    ring = [tuple(map(float, link.get("point").split(","))) for link in detail.findall("link")]
    assert ring[0] == ring[-1] and len(ring) == len(result.dz_polygon) + 1
    assert ring[:-1] == [(p.lat, p.lon) for p in result.dz_polygon]

    shape = etree.fromstring(b"<detail>" + footprint.detail.xml + b"</detail>").find("shape/ellipse")
    assert shape is not None and result.dispersion is not None
    ellipse = result.dispersion.ellipse
    assert float(shape.get("major")) == pytest.approx(ellipse.semi_major_m)
    assert float(shape.get("minor")) == pytest.approx(ellipse.semi_minor_m)
    assert (footprint.point.lat, footprint.point.lon) == (ellipse.center.lat, ellipse.center.lon)
    remarks = etree.fromstring(b"<detail>" + carp.detail.xml + b"</detail>").findtext("remarks")
    assert remarks is not None and remarks.startswith("Advisory only")


def test_without_dispersion_there_is_no_footprint() -> None:
    events = plan_events(plan(build(base())), uid_prefix="p", name="DZ", now_ms=NOW_MS)
    assert [e.type for e in events] == ["b-m-p-s-m", "u-d-f"]
