"""CoT <-> FederatedEvent conversion, flow tags, sequence marks and acknowledgements."""

from __future__ import annotations

from rallypoint.federation.convert import (
    ack_event,
    ack_of,
    add_flow_tag,
    flow_hops,
    from_federated,
    has_flow_tag,
    to_federated,
)
from rallypoint.model.cot import Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event

NOW = 1_718_000_000_000


def _event(detail: bytes = b'<contact callsign="A1"/><__group name="Cyan" role="Team Member"/>'):  # type: ignore[no-untyped-def]
    return make_event(uid="u1", type="a-f-G-U-C", how="m-g", time=NOW, start=NOW, stale=NOW + 60_000,
                      point=Point(lat=1.5, lon=2.5, hae=3.0, ce=4.0, le=5.0), detail_xml=detail)


def test_round_trip_keeps_event_and_marks() -> None:
    fed = to_federated(_event(), groups=["Blue"], node_id="alpha", now_ms=NOW, provenance=[("alpha", "alpha")],
                       hops=(3, 1), seq=7)
    assert fed.event.screenName == "A1" and fed.event.coordSource == "m-g"
    assert fed.event.other.startswith("<detail>")
    back = from_federated(fed, Limits())
    assert back.event.uid == "u1" and back.event.point.lat == 1.5 and back.event.stale == NOW + 60_000
    assert back.groups == ("Blue",)
    assert (back.origin_node, back.seq) == ("alpha", 7)
    assert b"_rpfed_" not in back.event.detail.xml
    assert has_flow_tag(back.event.detail.xml, "alpha")
    assert not has_flow_tag(back.event.detail.xml, "bravo")


def test_flow_tags_accumulate_hops() -> None:
    detail = add_flow_tag(b"<contact callsign='x'/>", "alpha", NOW)
    detail = add_flow_tag(detail, "bravo", NOW)
    assert flow_hops(detail) == 2
    assert has_flow_tag(detail, "alpha") and has_flow_tag(detail, "bravo")


def test_direct_addresses_become_marti_dests() -> None:
    fed = to_federated(_event(), groups=["Blue"], node_id="a", now_ms=NOW, provenance=[], hops=(3, 1))
    fed.event.ptpUids.append("remote-uid")
    back = from_federated(fed, Limits())
    assert [d.uid for d in back.event.detail.dests] == ["remote-uid"]


def test_ack_round_trip() -> None:
    assert ack_of(ack_event("bravo", 42, NOW)) == 42
    fed = to_federated(_event(), groups=[], node_id="a", now_ms=NOW, provenance=[], hops=(3, 1))
    assert ack_of(fed) is None
