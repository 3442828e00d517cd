"""readsb/dump1090 ``aircraft.json`` decoder; the document follows readsb's README-json.md field list."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rallypoint.connectors.adsb_json import AdsbJsonDecoder
from rallypoint.connectors.adsb_quality import EPU_95_TO_SIGMA, nacp_ce_m
from rallypoint.connectors.decoding import FOOT_M, KNOT_MPS
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(2023, 11, 14, 22, 13, 25, tzinfo=UTC)
DOC = {
    "now": 1700000000.5,
    "messages": 123456,
    "aircraft": [
        {
            "hex": "4ca2d6",
            "type": "adsb_icao",
            "flight": "RYR4ZK  ",
            "alt_baro": 37000,
            "alt_geom": 37525,
            "gs": 408.3,
            "track": 146.4,
            "baro_rate": 64,
            "squawk": "2200",
            "category": "A3",
            "lat": 51.45735,
            "lon": -1.02826,
            "nic": 8,
            "rc": 186,
            "seen_pos": 0.5,
            "version": 2,
            "nac_p": 9,
            "nac_v": 1,
            "sil": 3,
            "sil_type": "perhour",
            "mlat": [],
            "tisb": [],
            "messages": 300,
            "seen": 0.1,
            "rssi": -20.1,
        },
        {"hex": "40621d", "alt_baro": "ground", "gs": 12.0, "lat": 52.2572, "lon": 3.91937, "seen_pos": 2.0},
        {"hex": "a1b2c3", "alt_baro": 12000, "seen": 3.0},  # no position yet: skipped, not a reject
        {"hex": "~1a2b3c", "type": "tisb_other", "lat": 40.0, "lon": -74.0, "seen_pos": 1.0},
    ],
}


def test_decodes_documented_fields() -> None:
    dec = AdsbJsonDecoder("readsb")
    first, second = dec.decode(json.dumps(DOC).encode(), NOW)
    assert first.identity == Identity(kind=IdentityKind.ICAO, value="4ca2d6")
    assert first.name == "RYR4ZK"
    assert (first.lat, first.lon) == (51.45735, -1.02826)
    assert first.alt_m == pytest.approx(37525 * FOOT_M)  # geometric preferred
    assert first.speed_mps == pytest.approx(408.3 * KNOT_MPS)
    assert first.course_deg == 146.4
    assert first.climb_mps == pytest.approx(64 * FOOT_M / 60)
    assert first.ce_m == pytest.approx(30.0 * EPU_95_TO_SIGMA)
    assert first.quality == "nacp=9" and first.category == "A3"
    assert first.domain is Domain.AIR
    assert first.source_time == datetime.fromtimestamp(1700000000.0, UTC)  # now - seen_pos
    assert second.alt_m is None and second.ce_m is None
    assert dec.rejects.snapshot() == {"unsupported": 1}


def test_without_now_the_receive_time_is_the_reference() -> None:
    dec = AdsbJsonDecoder("readsb")
    doc = {"aircraft": [{"hex": "40621d", "lat": 52.2572, "lon": 3.91937, "seen_pos": 2.0}]}
    [obs] = dec.decode(json.dumps(doc).encode(), NOW)
    assert obs.source_time == datetime(2023, 11, 14, 22, 13, 23, tzinfo=UTC)


def test_nacp_table() -> None:
    assert nacp_ce_m(0) is None and nacp_ce_m(12) is None and nacp_ce_m("9") is None and nacp_ce_m(True) is None
    assert nacp_ce_m(11) == pytest.approx(3.0 / 2.4477, rel=1e-3)
    assert nacp_ce_m(1) == pytest.approx(18520.0 / 2.4477, rel=1e-3)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"hex": "4ca2d6", "lat": "51.4", "lon": -1.0}, "malformed"),
        ({"hex": "4ca2d6", "lat": None, "lon": -1.0}, "malformed"),
        ({"hex": "4ca2d6", "lat": True, "lon": -1.0}, "malformed"),
        ({"hex": 12345, "lat": 51.0, "lon": -1.0}, "malformed"),
        ({"hex": "zzzzzz", "lat": 51.0, "lon": -1.0}, "malformed"),
        ({"hex": "4ca2d6", "lat": 91.0, "lon": -1.0}, "impossible_position"),
        ({"hex": "4ca2d6", "lat": 0, "lon": 0}, "impossible_position"),
        ({"hex": "4ca2d6", "lat": 51.0, "lon": -1.0, "gs": "fast", "nac_p": [1]}, None),
        ("not an object", "malformed"),
    ],
)
def test_wrong_types_are_counted_per_entry(entry: object, reason: str | None) -> None:
    dec = AdsbJsonDecoder("readsb")
    good = {"hex": "40621d", "lat": 52.2572, "lon": 3.91937}
    observations = dec.decode(json.dumps({"aircraft": [entry, good]}).encode(), NOW)
    assert len(observations) == (1 if reason else 2)
    assert dec.rejects.snapshot() == ({reason: 1} if reason else {})


def test_nan_position_is_impossible() -> None:
    dec = AdsbJsonDecoder("readsb")
    assert dec.decode(b'{"aircraft": [{"hex": "4ca2d6", "lat": NaN, "lon": 1.0}]}', NOW) == []
    assert dec.rejects.total == 1


@pytest.mark.parametrize(
    "document", [b"", b"{", b"[]", b'{"aircraft": 3}', b"\xff" * 10, b"[" * 100_000 + b"]" * 100_000]
)
def test_bad_documents(document: bytes) -> None:
    dec = AdsbJsonDecoder("readsb")
    assert dec.decode(document, NOW) == []
    assert dec.rejects.snapshot() == {"malformed": 1}


def test_oversized_document_and_too_many_aircraft() -> None:
    dec = AdsbJsonDecoder("readsb", max_document=1000, max_aircraft=2)
    assert dec.decode(b" " * 1001, NOW) == []
    many = {"aircraft": [{"hex": f"{i:06x}", "lat": 1.0, "lon": 1.0} for i in range(1, 6)]}
    assert dec.decode(json.dumps(many).encode()[:100], NOW) == []  # truncated: malformed
    assert len(dec.decode(json.dumps(many).encode(), NOW)) == 2
    assert dec.rejects.snapshot() == {"too_large": 1, "malformed": 1, "too_many": 3}
