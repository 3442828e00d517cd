"""A scenario written down as JSON lines, for evaluating trackers offline on exactly the same data.

The first line describes the scenario (``"record": "scenario"``): name, seed, start time, length,
the origin of its local frame, its sources and its targets. Then one ``"truth"`` line per target per
``truth_step_s`` and one ``"report"`` line per delivered observation, in delivery order, each with
the target it came from (``truth_id`` null for a false alarm). The format is in docs/fusion.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import numpy as np

from rallypoint.fusion.metrics import LocalFrame, Points
from rallypoint.fusion.scenario import Scenario
from rallypoint.fusion.scenario_sources import SimReport, SourceKind, SourceModel
from rallypoint.model.track import Domain, Identity, Observation

RECORD_VERSION = 1


class SourceLine(msgspec.Struct, frozen=True):
    name: str
    kind: SourceKind
    domains: tuple[Domain, ...]
    period_s: float
    sigma_m: float
    identity: bool


class TargetLine(msgspec.Struct, frozen=True):
    id: str
    domain: Domain
    identity: Identity
    name: str
    category: str | None


class ScenarioLine(msgspec.Struct, frozen=True, tag_field="record", tag="scenario"):
    version: int
    name: str
    seed: int
    start: datetime
    duration_s: float
    lat0: float
    lon0: float
    truth_step_s: float
    sources: tuple[SourceLine, ...]
    targets: tuple[TargetLine, ...]
    # Played X times faster: scenario second t was sent at wall time start + t / speedup.
    speedup: float = 1.0


class TruthLine(msgspec.Struct, frozen=True, tag_field="record", tag="truth"):
    t: float
    id: str
    lat: float
    lon: float
    alt_m: float
    course_deg: float
    speed_mps: float


class ReportLine(msgspec.Struct, frozen=True, tag_field="record", tag="report"):
    deliver_s: float
    measured_s: float
    truth_id: str | None
    kind: SourceKind
    observation: Observation


Line = ScenarioLine | TruthLine | ReportLine


class RecordError(ValueError):
    """A recording that cannot be read; the message names the line and what is wrong."""


def record_lines(
    scenario: Scenario,
    sources: Iterable[SourceModel],
    reports: Iterable[SimReport],
    truth_step_s: float = 1.0,
    speedup: float = 1.0,
) -> Iterator[bytes]:
    """The recording of ``scenario`` as JSON lines (each ends with a newline)."""
    encoder = msgspec.json.Encoder()
    duration = float(scenario.targets[0].times[-1]) if scenario.targets else 0.0
    yield encoder.encode(ScenarioLine(
        version=RECORD_VERSION, name=scenario.spec.name, seed=scenario.seed, start=scenario.start,
        duration_s=duration, lat0=scenario.frame.lat0, lon0=scenario.frame.lon0, truth_step_s=truth_step_s,
        sources=tuple(SourceLine(s.name, s.kind, tuple(sorted(s.domains)), s.period_s, s.sigma_m, s.identity)
                      for s in sources),
        targets=tuple(TargetLine(t.target_id, t.domain, t.identity, t.name, t.category) for t in scenario.targets),
        speedup=speedup,
    )) + b"\n"
    for t in np.arange(0.0, duration + 1e-9, truth_step_s):
        for s in scenario.truth_at(float(t)):
            yield encoder.encode(TruthLine(
                round(s.t, 6), s.target_id, s.lat, s.lon, s.alt_m, s.course_deg, s.speed_mps)) + b"\n"
    for r in reports:
        yield encoder.encode(ReportLine(r.deliver_s, r.measured_s, r.truth_id, r.source_kind, r.observation)) + b"\n"


@dataclass
class Recording:
    """A recording read back: the scenario line, truth by time, reports in delivery order."""

    scenario: ScenarioLine
    truth: dict[float, list[TruthLine]] = field(default_factory=dict)
    reports: list[ReportLine] = field(default_factory=list)

    @property
    def frame(self) -> LocalFrame:
        return LocalFrame(self.scenario.lat0, self.scenario.lon0)

    def truth_times(self) -> list[float]:
        """The instants with truth, in order."""
        return sorted(self.truth)

    def truth_points(self, t: float) -> Points:
        """East/north metres of every target at the recorded instant ``t``."""
        states = self.truth.get(t, [])
        if not states:
            return np.zeros((0, 2))
        return self.frame.to_local([s.lat for s in states], [s.lon for s in states])


def read_recording(lines: Iterable[bytes]) -> Recording:
    """Parse a recording; ``RecordError`` names the first line that is not one."""
    decoder = msgspec.json.Decoder(Line)
    recording: Recording | None = None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise RecordError(f"line {number}: {exc}") from exc
        match line:
            case ScenarioLine() if recording is None:
                if line.version != RECORD_VERSION:
                    raise RecordError(f"line {number}: recording version {line.version}, this reads {RECORD_VERSION}")
                recording = Recording(line)
            case ScenarioLine():
                raise RecordError(f"line {number}: a second scenario line")
            case _ if recording is None:
                raise RecordError(f"line {number}: the first line must describe the scenario")
            case TruthLine():
                recording.truth.setdefault(line.t, []).append(line)
            case ReportLine():
                recording.reports.append(line)
    if recording is None:
        raise RecordError("empty recording")
    return recording
