"""Observations back onto the sources' own wire formats, so simulated feeds test the real decoders.

* ADS-B as SBS-1/BaseStation lines (what dump1090/readsb serve on port 30003): ``MSG,3`` (position
  and altitude), ``MSG,4`` (ground speed, track, vertical rate) and now and then ``MSG,1`` (callsign).
* AIS as ``!AIVDM`` sentences encoded by pyais: type 1 position reports and, now and then, the
  two-fragment type 5 static and voyage data (name and ship type).
* GPS as NMEA 0183 ``$GPRMC`` and ``$GPGGA`` built by pynmea2 (real checksums); HDOP is the stated
  accuracy over a 5 m user range error.
* A radar-like source without identity as CoT with ``how="m-r"``: each plot has a fresh uid
  (``<source>.plot-<n>``) that says nothing about which object it is, type ``a-u-A`` (air) or
  ``a-u-S`` (surface), ``ce`` from the radar's accuracy and no ``<track>`` (a plot has no velocity).

Each emitter keeps only what its format needs between reports (when static data was last sent,
a sequence number); it does no I/O and reads no clock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from xml.sax.saxutils import quoteattr

import pynmea2
from pyais.encode import encode_dict

from rallypoint.model.track import Domain, IdentityKind, Observation

MPS_TO_KT = 3600.0 / 1852.0
M_TO_FT = 1.0 / 0.3048
GPS_UERE_M = 5.0
STATIC_EVERY = 10  # position reports between two callsign (SBS MSG,1) or static data (AIS type 5) messages


class EmitError(ValueError):
    """An observation this format cannot carry (no identity where the format needs one)."""


def _when(obs: Observation) -> datetime:
    return obs.source_time or obs.received_at


class SbsEmitter:
    """SBS-1 BaseStation ``MSG`` lines for ADS-B observations (ICAO identity required)."""

    def __init__(self) -> None:
        self._sent: dict[str, int] = {}

    def emit(self, obs: Observation) -> bytes:
        """``MSG,3`` and, with velocity, ``MSG,4``; ``MSG,1`` first and every ``STATIC_EVERY`` reports."""
        if obs.identity is None or obs.identity.kind is not IdentityKind.ICAO:
            raise EmitError("an SBS line needs an ICAO identity")
        hexid = obs.identity.value.upper()
        count = self._sent.get(hexid, 0)
        self._sent[hexid] = count + 1
        when = _when(obs)
        stamp = f"{when:%Y/%m/%d},{when:%H:%M:%S}.{when.microsecond // 1000:03d}"
        head = f"1,1,{hexid},1,{stamp},{stamp}"
        lines = []
        if count % STATIC_EVERY == 0 and obs.name:
            lines.append(f"MSG,1,{head},{obs.name},,,,,,,,,,,0")
        alt = "" if obs.alt_m is None else str(round(obs.alt_m * M_TO_FT / 25.0) * 25)
        lines.append(f"MSG,3,{head},,{alt},,,{obs.lat:.5f},{obs.lon:.5f},,,0,0,0,0")
        if obs.speed_mps is not None and obs.course_deg is not None:
            climb = "" if obs.climb_mps is None else str(round(obs.climb_mps * M_TO_FT * 60.0 / 64.0) * 64)
            lines.append(f"MSG,4,{head},,,{obs.speed_mps * MPS_TO_KT:.0f},{obs.course_deg:.1f},,,{climb},,0,0,0,0")
        return "".join(line + "\r\n" for line in lines).encode("ascii")


class AisEmitter:
    """``!AIVDM`` sentences for AIS observations (MMSI identity required), encoded by pyais."""

    def __init__(self, channel: str = "A") -> None:
        self._sent: dict[int, int] = {}
        self._seq = 0
        self._channel = channel

    def emit(self, obs: Observation) -> bytes:
        """A type 1 position report; a type 5 (two fragments) first and every ``STATIC_EVERY`` reports."""
        if obs.identity is None or obs.identity.kind is not IdentityKind.MMSI:
            raise EmitError("an AIS message needs an MMSI identity")
        mmsi = int(obs.identity.value)
        count = self._sent.get(mmsi, 0)
        self._sent[mmsi] = count + 1
        sentences: list[str] = []
        if count % STATIC_EVERY == 0 and obs.name:
            self._seq = (self._seq + 1) % 10
            static: dict[str, str | int | float | bytes | bool] = {
                "type": 5, "mmsi": mmsi, "shipname": obs.name[:20].upper(), "callsign": "",
                "ship_type": int(obs.category) if obs.category and obs.category.isdigit() else 0,
                "ais_version": 0,
            }
            sentences += encode_dict(static, talker_id="AI", sentence_type="VDM", radio_channel=self._channel,
                                     seq_id=self._seq)
        speed_kt = min(102.2, obs.speed_mps * MPS_TO_KT) if obs.speed_mps is not None else 102.3
        position: dict[str, str | int | float | bytes | bool] = {
            "type": 1, "mmsi": mmsi, "status": 0, "lat": round(obs.lat, 6), "lon": round(obs.lon, 6),
            "speed": round(speed_kt, 1), "course": round(obs.course_deg, 1) if obs.course_deg is not None else 360.0,
            "heading": round(obs.course_deg) % 360 if obs.course_deg is not None else 511,
            "second": _when(obs).second, "accuracy": 1 if obs.ce_m is not None and obs.ce_m <= 10.0 else 0,
        }
        sentences += encode_dict(position, talker_id="AI", sentence_type="VDM", radio_channel=self._channel)
        return "".join(s + "\r\n" for s in sentences).encode("ascii")


def nmea_sentences(obs: Observation) -> bytes:
    """``$GPRMC`` (position, speed, course, date) and ``$GPGGA`` (altitude, HDOP) for one fix."""
    when = _when(obs)
    hhmmss = f"{when:%H%M%S}.{when.microsecond // 10_000:02d}"
    lat, ns = _ddmm(obs.lat, 2), "N" if obs.lat >= 0 else "S"
    lon, ew = _ddmm(obs.lon, 3), "E" if obs.lon >= 0 else "W"
    speed = f"{obs.speed_mps * MPS_TO_KT:.1f}" if obs.speed_mps is not None else ""
    course = f"{obs.course_deg:.1f}" if obs.course_deg is not None else ""
    rmc = pynmea2.RMC("GP", "RMC", (hhmmss, "A", lat, ns, lon, ew, speed, course, f"{when:%d%m%y}", "", ""))
    hdop = f"{(obs.ce_m or GPS_UERE_M) / GPS_UERE_M:.1f}"
    alt = f"{obs.alt_m:.1f}" if obs.alt_m is not None else ""
    gga = pynmea2.GGA("GP", "GGA", (hhmmss, lat, ns, lon, ew, "1", "08", hdop, alt, "M", "0.0", "M", "", ""))
    return f"{rmc}\r\n{gga}\r\n".encode("ascii")


def _ddmm(value: float, degree_digits: int) -> str:
    """Degrees to NMEA's ``(d)ddmm.mmmmm`` (minutes to 1e-5, about 2 cm)."""
    value = abs(value)
    degrees = int(value)
    minutes = round((value - degrees) * 60.0, 5)
    if minutes >= 60.0:
        degrees, minutes = degrees + 1, 0.0
    return f"{degrees:0{degree_digits}d}{minutes:08.5f}"


class RadarCotEmitter:
    """CoT events for plots of a radar-like source: ``how="m-r"``, no identity, a fresh uid per plot."""

    def __init__(self, stale_s: float = 12.0) -> None:
        self._plots = 0
        self._stale = timedelta(seconds=stale_s)

    def emit(self, obs: Observation) -> bytes:
        """One ``<event>``; the uid is ``<source>.plot-<n>`` and never repeats within this emitter."""
        self._plots += 1
        when = _when(obs)
        cot_type = "a-u-A" if obs.domain is Domain.AIR else "a-u-S" if obs.domain is Domain.SEA else "a-u-G"
        hae = obs.alt_m if obs.alt_m is not None else 0.0
        ce = obs.ce_m if obs.ce_m is not None else 9_999_999.0
        le = 150.0 if obs.alt_m is not None else 9_999_999.0
        uid = quoteattr(f"{obs.source}.plot-{self._plots}")
        track = ""
        if obs.course_deg is not None and obs.speed_mps is not None and math.isfinite(obs.speed_mps):
            track = f'<track course="{obs.course_deg:.1f}" speed="{obs.speed_mps:.2f}"/>'
        return (
            f'<event version="2.0" uid={uid} type="{cot_type}" how="m-r" time="{_cot_time(when)}" '
            f'start="{_cot_time(when)}" stale="{_cot_time(when + self._stale)}">'
            f'<point lat="{obs.lat:.7f}" lon="{obs.lon:.7f}" hae="{hae:.1f}" ce="{ce:.1f}" le="{le:.1f}"/>'
            f"<detail>{track}</detail></event>"
        ).encode()


def _cot_time(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"
