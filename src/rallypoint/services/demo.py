"""Live demo: simulated search-and-rescue teams moving, so a client that connects sees something."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

from rallypoint.clock import Clock
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin

# Around Lake Tahoe: a wilderness search-and-rescue exercise.
_CENTRE = (39.0968, -120.0324)
_TEAMS = ("Cyan", "Green", "Yellow", "Orange", "Magenta", "Maroon", "Blue", "Purple")
_CALLSIGNS = ("SAR-ALPHA", "SAR-BRAVO", "K9-ONE", "MEDIC-1", "DRONE-2", "FIRE-ENG-7", "WATER-RESCUE", "BASE-OPS")


class DemoSimulator:
    """Units walk circuits around a search area and report SA every ``period_s`` seconds."""

    def __init__(self, clock: Clock, accept: Callable[[Envelope], object], *, units: int = 8,
                 period_s: float = 2.0, seed: int = 7) -> None:
        self._clock = clock
        self._accept = accept
        self._units = units
        self._period_s = period_s
        self._rng = random.Random(seed)
        self._phase = [self._rng.uniform(0, 2 * math.pi) for _ in range(units)]
        self._radius = [self._rng.uniform(0.004, 0.02) for _ in range(units)]
        self._origin = Origin(session_id="demo")
        self._stop = asyncio.Event()

    def event_for(self, index: int, now_ms: int) -> CotEvent:
        """The SA of simulated unit ``index`` at ``now_ms``."""
        t = now_ms / 1000.0
        angle = self._phase[index] + t * 0.01 * (1 + index % 3)
        radius = self._radius[index]
        lat = _CENTRE[0] + radius * math.sin(angle)
        lon = _CENTRE[1] + radius * math.cos(angle) / math.cos(math.radians(_CENTRE[0]))
        callsign = _CALLSIGNS[index % len(_CALLSIGNS)] + ("" if index < len(_CALLSIGNS) else f"-{index}")
        team = _TEAMS[index % len(_TEAMS)]
        course = (math.degrees(-angle) + 360.0) % 360.0
        cot_type = "a-f-A-C-F-q" if callsign.startswith("DRONE") else "a-f-G-U-C"
        detail = (
            f"<contact callsign={quoteattr(callsign)} endpoint=\"*:-1:stcp\"/>"
            f"<__group name={quoteattr(team)} role=\"Team Member\"/>"
            f"<takv platform=\"Rallypoint demo\" version=\"1\" device=\"simulator\" os=\"\"/>"
            f"<track course=\"{course:.1f}\" speed=\"1.4\"/>"
            f"<status battery=\"{90 - index}\"/>"
        )
        return make_event(
            uid=f"rallypoint-demo-{index}",
            type=cot_type,
            how="m-s",
            time=now_ms,
            start=now_ms,
            stale=now_ms + int(self._period_s * 1000 * 10),
            point=Point(lat, lon, 1900.0, 10.0, 10.0),
            detail_xml=detail.encode(),
        )

    async def run(self) -> None:
        """Report every unit each period until :meth:`stop`."""
        while not self._stop.is_set():
            now = self._clock.now_ms()
            for i in range(self._units):
                self._accept(Envelope(self.event_for(i, now), self._origin, now))
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._period_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
