"""A hand-built exercise history for the after-action report tests, with known figures.

Exercise ``drill``: alpha-1 (Cyan) reports each second with two reports missing and one 3 s late,
bravo-1 (Red) every two seconds, a live MEDIC (Cyan) twice; an emergency, a task and a designation
inject and a chat; three rows of another exercise. ``build()`` adds the audit entries.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from rallypoint.aar.compute import ReportBuilder
from rallypoint.aar.model import Report
from rallypoint.storage.base import StoredEvent

T0 = 1_800_000_000_000


def row(uid: str, *, t: int, type: str = "a-f-G-U-C", lat: float = 10.0, lon: float = 20.0, team: str | None = None,
        callsign: str | None = None, received: int | None = None, exercise: str | None = None, unit: str = "",
        inject: str = "", kind: str = "", ref: str = "", detail: str = "") -> StoredEvent:
    """A stored row whose XML carries the exercise marker (when ``exercise``) and ``detail``."""
    mark = ""
    if exercise is not None:
        attrs = {"id": exercise, "unit": unit, "inject": inject, "kind": kind, "ref": ref}
        mark = "<__rallypoint_exercise " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items() if v) + "/>"
    opex = f' opex="e-{exercise}"' if exercise else ""
    xml = f'<event version="2.0" uid={quoteattr(uid)} type="{type}"{opex}><detail>{mark}{detail}</detail></event>'
    return StoredEvent(uid, type, "m-g", T0 + t, T0 + t, T0 + t + 60_000, lat, lon, 0.0, callsign,
                       frozenset({"A"}), team, "s", xml.encode(), T0 + (t if received is None else received),
                       True, exercise)


def history() -> list[StoredEvent]:
    rows: list[StoredEvent] = []
    # alpha-1 reports each second; 4 s and 5 s are missing, the 7 s report arrives 3 s late.
    for i, s in enumerate((0, 1, 2, 3, 6, 7, 8, 9)):
        rows.append(row("sim-a1", t=s * 1000, lat=10 + i * 0.001, team="Cyan", callsign="ALPHA 1",
                        received=s * 1000 + (3000 if s == 7 else 100), exercise="drill", unit="alpha-1"))
    rows += [row("sim-b1", t=s, team="Red", callsign="BRAVO", exercise="drill", unit="bravo-1")
             for s in (0, 2000, 4000)]
    rows += [row("ANDROID-1", t=s, team="Cyan", callsign="MEDIC") for s in (500, 5500)]
    rows += [row("sim-x", t=s, team="Red", exercise="other", unit="x") for s in (100, 200, 300)]
    rows.append(row("sim-a1-9-1-1", t=3000, type="b-a-o-tbl", exercise="drill", unit="alpha-1", inject="cas-12",
                    kind="emergency", detail='<link uid="sim-a1" relation="p-p"/>'))
    rows.append(row("rp-task-T1", t=3900, type="t-x-rp-task", lat=0, lon=0, detail=(
        '<__rallypoint_task id="T1" state="assigned" version="1" creator="trainer" assignee_uid="sim-b1"/>')))
    rows.append(row("x-exercise-1", t=4000, type="t-x-rp-exercise", lat=0, lon=0, exercise="drill",
                    inject="task-1", kind="task", ref="T1"))
    rows.append(row("x-exercise-2", t=5000, type="t-x-rp-exercise", lat=0, lon=0, exercise="drill",
                    inject="dz", kind="designation"))
    rows.append(row("chat-1", t=6000, type="b-t-f", lat=0, lon=0, exercise="drill", inject="chat-1", kind="chat"))
    rows.append(row("sim-a1-9-1-1", t=9000, type="b-a-o-can", callsign="ALPHA 1"))
    rows.append(row("status-1", t=10_000, type="t-x-rp-task-s", callsign="BRAVO", lat=0, lon=0,
                    detail='<__rallypoint_task_status id="T1" state="acknowledged"/>'))
    rows.sort(key=lambda r: r.time)
    return rows


# (ms after T0, actor, action, target) of the audit log beside the history; the last is after the window.
AUDIT = [
    (0, "trainer", "exercise.start", "drill"),
    (5100, "trainer", "designation.propose", "D1"),
    (8000, "medic", "emergency.ack", "sim-a1-9-1-1"),
    (20_000, "root", "designation.approve", "D1"),
    (90_000, "root", "designation.approve", "D2"),
]
WINDOW = (T0, T0 + 60_000)


def build(exercise: str | None = "drill") -> Report:
    builder = ReportBuilder(since_ms=WINDOW[0], until_ms=WINDOW[1], exercise=exercise, late_ms=2000)
    for r in history():
        builder.add_row(r)
    for at, actor, action, target in AUDIT:
        builder.add_audit(T0 + at, actor, action, target)
    return builder.finish()
