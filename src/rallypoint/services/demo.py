"""Live demo: simulated search-and-rescue teams moving, so a client that connects sees something.

Each unit drives a circuit at a constant ground speed chosen for what it is (walkers at 1.4 m/s, a
drone at 12 m/s, ...), and its ``<track speed course>`` is computed from the same motion, so the
distance between two reports matches the speed it reports and the heading matches its course.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from rallypoint.clock import Clock
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin

# Around Lake Tahoe: a wilderness search-and-rescue exercise.
_CENTRE = (39.0968, -120.0324)
_GROUND_HAE = 1900.0
# Mean Earth radius (IUGG): metres per degree of latitude on the sphere distance formulas use.
EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0
_TEAMS = ("Cyan", "Green", "Yellow", "Orange", "Magenta", "Maroon", "Blue", "Purple")


@dataclass(frozen=True)
class UnitProfile:
    """What a simulated unit is and how it moves: ground speed (m/s) around a circuit of ``radius_m``."""

    callsign: str
    cot_type: str
    speed_m_s: float
    radius_m: float
    height_m: float = 0.0


# Speeds of the real thing: people walk at ~1.4 m/s, a dog team jogs, vehicles keep to forest roads.
PROFILES = (
    UnitProfile("SAR-ALPHA", "a-f-G-U-C", 1.4, 450.0),
    UnitProfile("SAR-BRAVO", "a-f-G-U-C", 1.4, 650.0),
    UnitProfile("K9-ONE", "a-f-G-U-C", 2.5, 400.0),
    UnitProfile("MEDIC-1", "a-f-G-U-C", 1.2, 300.0),
    UnitProfile("DRONE-2", "a-f-A-C-F-q", 12.0, 900.0, height_m=120.0),
    UnitProfile("FIRE-ENG-7", "a-f-G-E-V", 8.0, 1500.0),
    UnitProfile("WATER-RESCUE", "a-f-S-X", 4.0, 800.0),
    UnitProfile("BASE-OPS", "a-f-G-U-C", 0.0, 1.0),
)


@dataclass(frozen=True)
class _Circuit:
    profile: UnitProfile
    callsign: str
    centre_lat: float
    centre_lon: float
    radius_m: float
    phase: float
    # +1 counter-clockwise, -1 clockwise (seen from above).
    turn: int


class DemoSimulator:
    """Units drive circuits around a search area and report SA every ``period_s`` seconds.

    ``groups()`` names the groups each round of reports is published to; it is asked every round so
    accounts created while the demo runs see it from the next report on.
    """

    def __init__(self, clock: Clock, accept: Callable[[Envelope], object], *, units: int = 8,
                 period_s: float = 2.0, seed: int = 7,
                 groups: Callable[[], frozenset[str]] = lambda: frozenset({ANON_GROUP})) -> None:
        self._clock = clock
        self._accept = accept
        self._period_s = period_s
        self._groups = groups
        rng = random.Random(seed)
        self._circuits = [self._circuit(rng, index) for index in range(units)]
        self._stop = asyncio.Event()

    @staticmethod
    def _circuit(rng: random.Random, index: int) -> _Circuit:
        profile = PROFILES[index % len(PROFILES)]
        suffix = "" if index < len(PROFILES) else f"-{index}"
        # Each circuit has its own centre within ~1.5 km of the search area's, so teams spread out.
        north, east = rng.uniform(-1500.0, 1500.0), rng.uniform(-1500.0, 1500.0)
        return _Circuit(
            profile=profile,
            callsign=profile.callsign + suffix,
            centre_lat=_CENTRE[0] + north / _M_PER_DEG,
            centre_lon=_CENTRE[1] + east / (_M_PER_DEG * math.cos(math.radians(_CENTRE[0]))),
            radius_m=profile.radius_m * rng.uniform(0.8, 1.25),
            phase=rng.uniform(0.0, 2.0 * math.pi),
            turn=rng.choice((1, -1)),
        )

    def event_for(self, index: int, now_ms: int) -> CotEvent:
        """The SA of simulated unit ``index`` at ``now_ms`` (a pure function of the two)."""
        c = self._circuits[index]
        profile = c.profile
        rate = c.turn * profile.speed_m_s / c.radius_m  # rad/s: ground speed is radius x rate
        angle = c.phase + rate * (now_ms / 1000.0)
        north, east = c.radius_m * math.sin(angle), c.radius_m * math.cos(angle)
        lat = c.centre_lat + north / _M_PER_DEG
        lon = c.centre_lon + east / (_M_PER_DEG * math.cos(math.radians(lat)))
        # Velocity is the derivative of (north, east): its bearing is the course.
        v_north, v_east = c.radius_m * rate * math.cos(angle), -c.radius_m * rate * math.sin(angle)
        course = (math.degrees(math.atan2(v_east, v_north)) + 360.0) % 360.0 if profile.speed_m_s else 0.0
        detail = (
            f"<contact callsign={quoteattr(c.callsign)} endpoint=\"*:-1:stcp\"/>"
            f"<__group name={quoteattr(_TEAMS[index % len(_TEAMS)])} role=\"Team Member\"/>"
            f"<takv platform=\"Rallypoint demo\" version=\"1\" device=\"simulator\" os=\"\"/>"
            f"<track course=\"{course:.1f}\" speed=\"{profile.speed_m_s:.1f}\"/>"
            f"<status battery=\"{90 - index % 60}\"/>"
        )
        return make_event(
            uid=f"rallypoint-demo-{index}",
            type=profile.cot_type,
            how="m-s",
            time=now_ms,
            start=now_ms,
            stale=now_ms + int(self._period_s * 1000 * 10),
            point=Point(lat, lon, _GROUND_HAE + profile.height_m, 10.0, 10.0),
            detail_xml=detail.encode(),
        )

    def tick(self, now_ms: int) -> list[Envelope]:
        """One round of reports: every unit's SA at ``now_ms``, from the demo's groups."""
        origin = Origin(session_id="demo", groups=self._groups())
        return [Envelope(self.event_for(i, now_ms), origin, now_ms) for i in range(len(self._circuits))]

    async def run(self) -> None:
        """Report every unit each period until :meth:`stop`."""
        while not self._stop.is_set():
            for envelope in self.tick(self._clock.now_ms()):
                self._accept(envelope)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._period_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
