"""Identity binding: device SA binds, markers and relayed units never do, each refusal has its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.proto_codec import decode_payload, encode_payload
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.security.policy import (
    SECOND_DEVICE_UID,
    SPOOFED_UID,
    UNBOUND_UID,
    Claim,
    IdentityPolicy,
    IdentityRefused,
    is_device_sa,
)
from tests.support.cot_client import cot, sa

SAMPLES = Path(__file__).parents[2] / "data" / "samples"


def sample(name: str) -> CotEvent:
    return parse_event((SAMPLES / name).read_bytes(), Limits())


def event(data: bytes) -> CotEvent:
    return parse_event(data, Limits())


def unit(uid: str, callsign: str) -> CotEvent:
    """A unit as feed gateways send it: a callsign and an endpoint, no takv."""
    return event(cot(uid, "a-n-A-C-F", detail=f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/>'))


def marker(uid: str) -> CotEvent:
    """A 2525 marker a user dropped: a callsign, linked to its creator, no endpoint and no takv."""
    return event(cot(uid, "a-h-G", detail=(
        '<link uid="ANDROID-me" type="a-f-G-U-C" relation="p-p"/><contact callsign="U.1"/>'
    )))


def refusal(policy: IdentityPolicy, session: str, principal: str | None, ev: CotEvent) -> IdentityRefused:
    with pytest.raises(IdentityRefused) as info:
        policy.check(session, principal, ev)
    return info.value


@pytest.mark.parametrize("name", ["01_sa_pli_atak_civ_taky_fixture.xml", "01b_sa_pli_minimal_taky_fixture.xml"])
def test_the_real_self_reports_are_device_sa(name: str) -> None:
    assert is_device_sa(sample(name))


@pytest.mark.parametrize("name", [
    "03_marker_itak_empty_marti_taky_fixture.xml",
    "20_atak_export_Marker_2525.xml",
    "20_atak_export_Marker_Spot.xml",
    "20_atak_export_Marker_Icon_Set.xml",
    "11_emergency_911_alert_takserver_test.xml",
])
def test_markers_and_alerts_from_real_clients_are_not_device_sa(name: str) -> None:
    assert not is_device_sa(sample(name))


@pytest.mark.parametrize("name", ["01_sa_pli_atak_civ_taky_fixture.xml", "20_atak_export_Marker_2525.xml"])
def test_protobuf_reports_are_recognised_like_xml(name: str) -> None:
    # TAK Protocol v1 carries contact and takv as typed fields, not as XML.
    xml = sample(name)
    decoded = decode_payload(encode_payload(xml), Limits()).event
    assert decoded is not None
    assert is_device_sa(decoded) == is_device_sa(xml)


def test_takv_alone_or_an_endpoint_alone_makes_device_sa() -> None:
    assert is_device_sa(event(cot("x", detail='<takv platform="WinTAK-CIV"/>')))
    assert is_device_sa(unit("ICAO-A1B2C3", "N123"))
    assert not is_device_sa(event(cot("x", detail='<contact callsign="ONLY-A-CALLSIGN"/>')))
    # Not an atom, or linked to a parent: not the device itself.
    assert not is_device_sa(event(cot("x", "b-m-p-s-m", detail='<takv platform="ATAK-CIV"/>')))
    assert not is_device_sa(event(cot("x", detail=(
        '<takv platform="ATAK-CIV"/><link uid="p" type="a-f-G-U-C" relation="p-p"/>'
    ))))


def test_markers_never_bind_and_the_device_sa_does() -> None:
    policy = IdentityPolicy()
    policy.track_session("s1")
    # A client that drops a marker before its first report is not taken to be that marker.
    assert policy.check("s1", "alice", marker("marker-1")) is Claim.ITEM
    assert policy.holder_of("marker-1") is None
    assert policy.check("s1", "alice", event(sa("ANDROID-alice", "ALICE"))) is Claim.DEVICE
    assert policy.holder_of("ANDROID-alice") == "alice"
    assert policy.check("s1", "alice", event(sa("ANDROID-alice", "ALICE", lat=2.0))) is Claim.DEVICE
    for i in range(5):
        assert policy.check("s1", "alice", marker(f"marker-{i}")) is Claim.ITEM
    # Units without takv or endpoint (a track, an unknown contact) are items too.
    assert policy.check("s1", "alice", event(cot("uas-1", "a-f-A-M-H-Q", detail='<contact callsign="UAS"/>'))) \
        is Claim.ITEM


def test_a_second_device_identity_is_refused_with_its_own_reason() -> None:
    policy = IdentityPolicy()
    policy.track_session("s1")
    policy.check("s1", "alice", event(sa("ANDROID-alice", "ALICE")))
    refused = refusal(policy, "s1", "alice", event(sa("ANDROID-other", "OTHER")))
    assert refused.reason == SECOND_DEVICE_UID
    assert "second device identity" in refused.detail
    assert "held" not in refused.detail
    # Nobody holds the refused uid: the same principal's own session may still use it.
    assert policy.holder_of("ANDROID-other") is None


def test_anonymous_sessions_are_bound_per_session() -> None:
    policy = IdentityPolicy()
    policy.track_session("s1")
    policy.check("s1", None, event(sa("anon-1", "A1")))
    assert refusal(policy, "s1", None, event(sa("anon-2", "A2"))).reason == SECOND_DEVICE_UID
    assert policy.holder_of("anon-1") is None


def test_a_uid_held_by_another_principal_is_refused_as_held() -> None:
    policy = IdentityPolicy()
    policy.track_session("a")
    policy.track_session("m")
    policy.check("a", "alice", event(sa("ANDROID-alice", "ALICE")))
    for ev in (event(sa("ANDROID-alice", "ALICE")), event(cot("ANDROID-alice", "b-m-p-s-m")), marker("ANDROID-alice")):
        refused = refusal(policy, "m", "mallory", ev)
        assert refused.reason == SPOOFED_UID
        assert "held by another principal" in refused.detail
    # Anonymous and untracked producers (UDP, connectors) are held to the same rule.
    assert refusal(policy, "udp", None, event(cot("ANDROID-alice"))).reason == SPOOFED_UID
    # Alice keeps her uid after her session ends.
    policy.forget_session("a")
    policy.track_session("a2")
    assert policy.check("a2", "alice", event(sa("ANDROID-alice", "ALICE"))) is Claim.DEVICE


def test_configured_uids_limit_the_device_uid() -> None:
    policy = IdentityPolicy({"alice": ["ANDROID-alice"]})
    policy.track_session("s1")
    refused = refusal(policy, "s1", "alice", event(sa("ANDROID-elsewhere", "ALICE")))
    assert refused.reason == UNBOUND_UID
    assert policy.check("s1", "alice", event(sa("ANDROID-alice", "ALICE"))) is Claim.DEVICE
    # Configured uids are held from the start, before their device ever connects.
    policy.track_session("s2")
    assert refusal(policy, "s2", "bob", event(sa("ANDROID-alice", "ALICE"))).reason == SPOOFED_UID


def test_a_gateway_relays_many_devices_without_holding_them() -> None:
    policy = IdentityPolicy({"adsb-gw": ["*"]})
    policy.track_session("gw")
    for i in range(50):
        assert policy.check("gw", "adsb-gw", unit(f"ICAO-{i:06X}", f"N{i}")) is Claim.RELAYED
        assert policy.check("gw", "adsb-gw", event(sa(f"MESH-{i}", f"M{i}"))) is Claim.RELAYED
        assert policy.holder_of(f"ICAO-{i:06X}") is None
    assert policy.check("gw", "adsb-gw", marker("gw-marker")) is Claim.ITEM
    # The real device connects later and binds its uid; the gateway may no longer speak for it.
    policy.track_session("phone")
    assert policy.check("phone", "mesh-7", event(sa("MESH-7", "M7"))) is Claim.DEVICE
    refused = refusal(policy, "gw", "adsb-gw", event(sa("MESH-7", "M7")))
    assert refused.reason == SPOOFED_UID


def test_a_gateway_cannot_take_a_held_uid() -> None:
    policy = IdentityPolicy({"gw": ["*"], "alice": ["ANDROID-alice"]})
    policy.track_session("gw")
    assert refusal(policy, "gw", "gw", event(sa("ANDROID-alice", "ALICE"))).reason == SPOOFED_UID


def test_untracked_producers_never_bind() -> None:
    policy = IdentityPolicy()
    assert policy.check("udp", None, event(sa("mesh-a", "A"))) is Claim.ITEM
    assert policy.check("udp", None, event(sa("mesh-b", "B"))) is Claim.ITEM
    assert policy.check("link", "peer", event(sa("remote-a", "RA"))) is Claim.ITEM
    assert policy.holder_of("remote-a") is None


def test_a_binding_learned_from_another_node_refuses_other_principals_here() -> None:
    policy = IdentityPolicy({"gw": ["*"]})
    policy.learn("alice", event(sa("ANDROID-a", "A")))
    policy.learn("gw", event(sa("RELAYED-1", "R")))  # a gateway relays devices, it holds none
    policy.learn("carol", marker("marker-1"))  # items bind nothing
    policy.learn(None, event(sa("ANON-1", "N")))
    assert policy.holder_of("ANDROID-a") == "alice"
    assert [policy.holder_of(uid) for uid in ("RELAYED-1", "marker-1", "ANON-1")] == [None, None, None]
    policy.track_session("s-m")
    with pytest.raises(IdentityRefused) as refused:
        policy.check("s-m", "mallory", event(sa("ANDROID-a", "M")))
    assert refused.value.reason == SPOOFED_UID
    policy.track_session("s-a")
    assert policy.check("s-a", "alice", event(sa("ANDROID-a", "A"))) is Claim.DEVICE


def test_a_new_binding_is_offered_to_the_claim_listener_once_and_the_cluster_decision_settles_it() -> None:
    policy = IdentityPolicy({"gw": ["*"], "cfg": ["ANDROID-cfg"]})
    claims: list[tuple[str, str]] = []
    policy.on_claim(lambda uid, principal: claims.append((uid, principal)))
    for session in ("s-1", "s-2", "s-gw"):
        policy.track_session(session)
    assert policy.check("s-1", "mallory", event(sa("ANDROID-x", "M"))) is Claim.DEVICE
    assert policy.check("s-1", "mallory", event(sa("ANDROID-x", "M"))) is Claim.DEVICE  # a refresh: no new claim
    policy.check("s-gw", "gw", event(sa("ANDROID-y", "Y")))  # a gateway holds nothing, claims nothing
    assert claims == [("ANDROID-x", "mallory")]
    # The cluster says alice claimed it first: mallory is refused from now on, alice is not.
    assert policy.settle("ANDROID-x", "alice") == "mallory"
    assert policy.settle("ANDROID-x", "alice") is None
    with pytest.raises(IdentityRefused) as info:
        policy.check("s-1", "mallory", event(sa("ANDROID-x", "M")))
    assert info.value.reason == SPOOFED_UID
    assert policy.check("s-2", "alice", event(sa("ANDROID-x", "A"))) is Claim.DEVICE
    # A configured uid stays with its principal whatever the cluster says.
    assert policy.settle("ANDROID-cfg", "alice") is None and policy.holder_of("ANDROID-cfg") == "cfg"
