"""CoT feed decoder: the ATAK position sample of the shared TAK samples, radar-like tracks, hostile XML."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rallypoint.connectors.cot_feed import CotDatagramDecoder, CotStreamDecoder
from rallypoint.model.track import Domain, Identity, IdentityKind
from rallypoint.protocol.limits import Limits

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
NOW = datetime(2021, 2, 27, 20, 33, tzinfo=UTC)
# The ATAK PLI of the TAK samples (taky's fixture): JENNY at 1.234567, -3.141592.
PLI = (
    b'<event version="2.0" uid="ANDROID-deadbeef" type="a-f-G-U-C" how="m-g" time="2021-02-27T20:32:24.771Z" '
    b'start="2021-02-27T20:32:24.771Z" stale="2021-02-27T20:38:39.771Z"><point lat="1.234567" lon="-3.141592" '
    b'hae="-25.7" ce="9.9" le="9999999.0"/><detail><contact endpoint="*:-1:stcp" callsign="JENNY"/>'
    b'<__group role="Team Member" name="Cyan"/><track course="80.24833892285461" speed="0.0"/></detail></event>'
)


def radar(uid: str, lat: float, how: str = "m-r", cot_type: str = "a-u-S") -> bytes:
    return (
        f'<event version="2.0" uid="{uid}" type="{cot_type}" how="{how}" time="2021-02-27T20:32:30Z" '
        f'start="2021-02-27T20:32:30Z" stale="2021-02-27T20:37:30Z"><point lat="{lat}" lon="24.9" hae="9999999.0" '
        f'ce="50" le="9999999.0"/><detail><track course="90" speed="5.5"/></detail></event>'
    ).encode()


def test_pli_becomes_an_observation_with_the_tak_uid() -> None:
    dec = CotStreamDecoder("peer")
    [obs] = dec.receive(PLI, NOW)
    assert obs.identity == Identity(kind=IdentityKind.TAK, value="ANDROID-deadbeef")
    assert (obs.lat, obs.lon) == (1.234567, -3.141592)
    assert obs.alt_m == -25.7 and obs.ce_m == 9.9
    assert obs.name == "JENNY" and obs.category == "a-f-G-U-C" and obs.domain is Domain.GROUND
    assert obs.course_deg == pytest.approx(80.24833892285461) and obs.speed_mps == 0.0
    assert obs.source_time == datetime(2021, 2, 27, 20, 32, 24, 771000, tzinfo=UTC)


def test_shared_sample_file_decodes() -> None:
    sample = SAMPLES / "01_sa_pli_atak_civ_taky_fixture.xml"
    [obs] = CotStreamDecoder("peer").receive(sample.read_bytes(), NOW)
    assert obs.name == "JENNY"


def test_radar_tracks_carry_no_identity() -> None:
    dec = CotStreamDecoder("radar")
    first, second = dec.receive(radar("TRK-0001", 60.1) + b"\n" + radar("TRK-0002", 60.2, how="m-g"), NOW)
    assert first.identity is None and first.domain is Domain.SEA and first.alt_m is None
    assert first.speed_mps == 5.5 and first.course_deg == 90.0 and first.ce_m == 50.0
    assert second.identity == Identity(kind=IdentityKind.TAK, value="TRK-0002")


def test_events_split_across_reads() -> None:
    dec = CotStreamDecoder("peer")
    assert dec.receive(PLI[:100], NOW) == []
    assert len(dec.receive(PLI[100:] + PLI[:10], NOW)) == 1
    assert len(dec.receive(PLI[10:], NOW)) == 1


def test_non_atoms_and_stale_events_are_counted() -> None:
    dec = CotStreamDecoder("peer")
    chat = (SAMPLES / "04_chat_p2p_atak_takserver_comment.xml").read_bytes()
    late = datetime(2021, 2, 27, 21, 0, tzinfo=UTC)
    assert dec.receive(PLI, late) == []
    assert dec.receive(chat, NOW) == []
    assert dec.receive(radar("X", 0.0).replace(b'lon="24.9"', b'lon="0.0"'), NOW) == []
    assert dec.rejects.snapshot() == {"stale": 1, "impossible_position": 1, "unsupported": 1}


ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
    b"<event>&lol2;</event>"
)


@pytest.mark.parametrize(
    "junk",
    [
        ENTITY_BOMB,
        b"<event uid='x'><point lat='nan'/></event>",
        b"\x00\xff garbage \x01" * 10,
        b'<event uid="big">' + b"a" * 300_000 + b"</event>",
    ],
)
def test_hostile_input_is_counted_and_the_next_event_arrives(junk: bytes) -> None:
    dec = CotStreamDecoder("peer")
    observations = dec.receive(junk + PLI, NOW)
    assert [o.name for o in observations] == ["JENNY"]
    assert dec.rejects.total >= 1


def test_ten_megabytes_of_garbage_never_raise() -> None:
    dec = CotStreamDecoder("peer")
    assert dec.receive(b"x" * (10 * 1024 * 1024), NOW) == []
    assert [o.name for o in dec.receive(PLI, NOW)] == ["JENNY"]
    assert dec.rejects.total >= 1


def test_end_of_stream_readies_a_new_connection() -> None:
    dec = CotStreamDecoder("peer")
    dec.receive(PLI[:50], NOW)
    dec.receive(b"", NOW)
    assert len(dec.receive(PLI, NOW)) == 1


def test_datagrams_xml_and_hostile() -> None:
    dec = CotDatagramDecoder("mcast", limits=Limits(max_event_bytes=8192))
    assert [o.name for o in dec.receive(PLI, NOW)] == ["JENNY"]
    assert dec.receive(ENTITY_BOMB, NOW) == []
    assert dec.receive(b"\xbf\x02\xbfjunk", NOW) == []
    assert dec.receive(b"x" * 10_000, NOW) == []
    assert dec.rejects.total == 3


def test_mesh_datagram() -> None:
    from rallypoint.protocol.wire import decode_datagram, encode_mesh

    event = decode_datagram(PLI, Limits())
    [obs] = CotDatagramDecoder("mcast").receive(encode_mesh(event), NOW)
    assert obs.identity == Identity(kind=IdentityKind.TAK, value="ANDROID-deadbeef")
