"""Simulated observations on the real wire formats: the libraries and our own decoders read them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pynmea2
import pytest
from lxml import etree
from pyais import decode

from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.fusion.emit import AisEmitter, EmitError, RadarCotEmitter, SbsEmitter, nmea_sentences
from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_sources import SourceKind, simulate
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

WHEN = datetime(2026, 1, 1, 12, 0, 7, 250_000, tzinfo=UTC)


def _obs(**fields: object) -> Observation:
    base: dict[str, object] = {"source": "sim", "received_at": WHEN + timedelta(seconds=1), "source_time": WHEN,
                               "lat": 54.412345, "lon": -10.654321}
    return Observation(**{**base, **fields})  # type: ignore[arg-type]


def test_ais_position_and_static_data_decode_with_pyais_and_ours() -> None:
    vessel = _obs(domain=Domain.SEA, identity=Identity(IdentityKind.MMSI, "211234567"), name="SIM VESSEL 1",
                  category="70", course_deg=123.4, speed_mps=5.0, ce_m=25.0)
    wire = AisEmitter().emit(vessel)
    lines = wire.decode().split("\r\n")[:-1]
    assert [line[:9] for line in lines] == ["!AIVDM,2,", "!AIVDM,2,", "!AIVDM,1,"]
    static, position = decode(*lines[:2]).asdict(), decode(lines[2]).asdict()
    assert static["shipname"] == "SIM VESSEL 1" and static["ship_type"] == 70
    assert position["mmsi"] == 211234567 and position["second"] == 7 and position["accuracy"] is False
    assert position["lat"] == pytest.approx(54.412345, abs=1e-5)
    assert position["lon"] == pytest.approx(-10.654321, abs=1e-5)
    assert position["speed"] == pytest.approx(9.7) and position["course"] == pytest.approx(123.4)

    decoder = AisDecoder("ais")
    (got,) = decoder.receive(wire, WHEN + timedelta(seconds=1))
    assert decoder.rejects.total == 0
    assert got.identity == Identity(IdentityKind.MMSI, "211234567") and got.name == "SIM VESSEL 1"
    assert got.source_time == WHEN.replace(microsecond=0)
    assert got.lat == pytest.approx(54.412345, abs=1e-5) and got.speed_mps == pytest.approx(5.0, abs=0.03)


def test_ais_static_data_only_now_and_then() -> None:
    emitter = AisEmitter()
    vessel = _obs(identity=Identity(IdentityKind.MMSI, "211234567"), name="X", course_deg=1.0, speed_mps=1.0)
    counts = [emitter.emit(vessel).count(b"\r\n") for _ in range(12)]
    assert counts == [3] + [1] * 9 + [3, 1]


def test_sbs_lines_follow_basestation_and_our_decoder_reads_them() -> None:
    aircraft = _obs(domain=Domain.AIR, identity=Identity(IdentityKind.ICAO, "3c6444"), name="RPX101",
                    alt_m=3048.0, course_deg=271.5, speed_mps=200.0, climb_mps=5.0)
    wire = SbsEmitter().emit(aircraft)
    lines = wire.decode().split("\r\n")[:-1]
    assert [line.split(",")[:2] for line in lines] == [["MSG", "1"], ["MSG", "3"], ["MSG", "4"]]
    assert all(len(line.split(",")) == 22 for line in lines)
    position = lines[1].split(",")
    assert position[4] == "3C6444" and position[6] == "2026/01/01" and position[7] == "12:00:07.250"
    assert position[11] == "10000" and position[14:16] == ["54.41235", "-10.65432"]
    sbs = pytest.importorskip("rallypoint.connectors.sbs")
    decoder = sbs.SbsDecoder("adsb")
    # Velocity first, then the position that carries it (the decoder reports on positions).
    decoder.receive(wire, WHEN)
    (got,) = decoder.receive(SbsEmitter().emit(aircraft).split(b"\r\n", 1)[1], WHEN)
    assert decoder.rejects.total == 0
    assert got.identity == Identity(IdentityKind.ICAO, "3c6444") and got.name == "RPX101"
    assert got.alt_m == pytest.approx(3048.0, abs=8) and got.course_deg == pytest.approx(271.5)
    assert got.speed_mps == pytest.approx(200.0, abs=0.3)


def test_nmea_fix_checks_out_in_pynmea2_and_our_decoder() -> None:
    unit = _obs(domain=Domain.GROUND, alt_m=21.5, course_deg=90.0, speed_mps=10.0, ce_m=5.0)
    wire = nmea_sentences(unit)
    rmc, gga = (pynmea2.parse(line, check=True) for line in wire.decode().split("\r\n")[:-1])
    assert rmc.latitude == pytest.approx(54.412345, abs=1e-6) and rmc.longitude == pytest.approx(-10.654321, abs=1e-6)
    assert float(rmc.spd_over_grnd) == pytest.approx(19.4) and rmc.datestamp.isoformat() == "2026-01-01"
    assert float(gga.horizontal_dil) == 1.0 and float(gga.altitude) == 21.5
    decoder = NmeaDecoder("gps-1")
    got = decoder.receive(wire, WHEN + timedelta(seconds=1))
    assert decoder.rejects.total == 0 and got
    assert got[-1].lat == pytest.approx(54.412345, abs=1e-6) and got[-1].ce_m == pytest.approx(5.0)


def test_radar_plots_are_cot_without_identity() -> None:
    emitter = RadarCotEmitter(stale_s=12.0)
    plot = _obs(source="sim-radar", domain=Domain.AIR, alt_m=3000.0, ce_m=80.0)
    first, second = etree.fromstring(emitter.emit(plot)), etree.fromstring(emitter.emit(plot))
    assert first.get("how") == "m-r" and first.get("type") == "a-u-A"
    assert first.get("uid") != second.get("uid") and first.get("uid", "").startswith("sim-radar.plot-")
    assert first.get("time") == "2026-01-01T12:00:07.250Z" and first.get("stale") == "2026-01-01T12:00:19.250Z"
    point = first.find("point")
    assert point is not None and float(point.get("ce", "0")) == 80.0 and float(point.get("hae", "0")) == 3000.0
    assert first.find("detail/track") is None
    surface = etree.fromstring(emitter.emit(_obs(source="r", domain=Domain.SEA)))
    assert surface.get("type") == "a-u-S"


def test_formats_that_need_an_identity_refuse_without_one() -> None:
    with pytest.raises(EmitError, match="ICAO"):
        SbsEmitter().emit(_obs())
    with pytest.raises(EmitError, match="MMSI"):
        AisEmitter().emit(_obs(identity=Identity(IdentityKind.ICAO, "abcdef")))


def test_a_whole_scenario_emits_without_rejects() -> None:
    scenario = build_scenario(SCENARIOS["small"], 11)
    ais, nmea = AisDecoder("ais"), NmeaDecoder("gps")
    sbs_module = pytest.importorskip("rallypoint.connectors.sbs")
    sbs = sbs_module.SbsDecoder("adsb")
    emitters = {SourceKind.ADSB: SbsEmitter(), SourceKind.AIS: AisEmitter(), SourceKind.RADAR: RadarCotEmitter()}
    decoded = 0
    for report in simulate(scenario):
        obs, at = report.observation, report.observation.received_at
        match report.source_kind:
            case SourceKind.ADSB:
                decoded += len(sbs.receive(emitters[SourceKind.ADSB].emit(obs), at))  # type: ignore[union-attr]
            case SourceKind.AIS:
                decoded += len(ais.receive(emitters[SourceKind.AIS].emit(obs), at))  # type: ignore[union-attr]
            case SourceKind.GPS:
                decoded += len(nmea.receive(nmea_sentences(obs), at))
            case SourceKind.RADAR:
                etree.fromstring(emitters[SourceKind.RADAR].emit(obs))  # type: ignore[union-attr]
    assert ais.rejects.total == 0 and nmea.rejects.total == 0 and sbs.rejects.total == 0
    assert decoded > 0
