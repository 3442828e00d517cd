"""Emergencies: raised, repeated until cancelled (every cancel form), shown to late joiners; no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope
from rallypoint.services.emergency import REPEAT_STALE_MS
from tests.support.picture import Picture, Receiver, event, groups, picture, sample

ALERT = "11_emergency_911_alert_takserver_test.xml"
# The alert sample's uid and the device it links to (ATAK's <selfUid>-9-1-1 convention).
ALERT_UID = "16173334444-9-1-1"
DEVICE = "ANDROID-358982072593830"


def _alert(pic: Picture, uid: str = "a-9-1-1", link: str = "dev-a", cot_type: str = "b-a-o-tbl") -> CotEvent:
    return event(pic.clock, uid, cot_type, f'<link uid="{link}" type="a-f-G-U-C" relation="p-p"/>'
                 '<contact callsign="A-Alert"/><emergency type="911 Alert">A</emergency>')


def _cancel(pic: Picture, uid: str, *, link: str | None = None, cot_type: str = "b-a-o-can") -> CotEvent:
    linked = f'<link uid="{link}" type="a-f-G-U-C" relation="p-p"/>' if link else ""
    return event(pic.clock, uid, cot_type, f'{linked}<emergency cancel="true">A</emergency>')


async def _repeat_until(pic: Picture, republish: Callable[[Envelope], object], done: asyncio.Event) -> None:
    """Run the repeat loop until ``done`` is set, then stop it and wait for it to end."""
    runner = asyncio.create_task(pic.emergencies.run(republish))
    try:
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        pic.emergencies.stop()
        await runner


def test_the_real_alert_sample_is_active_and_shown_to_late_joiners_refreshed() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.send(alice, sample(pic.clock, ALERT))
    assert set(pic.emergencies.active) == {ALERT_UID}
    pic.clock.advance(120)
    late = Receiver("late")
    shown = list(pic.emergencies.visible_to(late, pic.clock.now_ms()))
    assert [e.event.uid for e in shown] == [ALERT_UID]
    now = pic.clock.now_ms()
    assert shown[0].repeat and shown[0].event.stale == now + REPEAT_STALE_MS and shown[0].event.time == now
    assert list(pic.emergencies.visible_to(alice, now)) == [], "not echoed to the device that raised it"
    assert list(pic.emergencies.visible_to(Receiver("blue", read_groups=groups("Blue")), now)) == []


def test_each_cancel_form_ends_the_alert() -> None:
    forms: dict[str, Callable[[Picture], CotEvent]] = {
        "b-a-o-can with the alert's uid": lambda pic: _cancel(pic, "a-9-1-1"),
        "an alert type carrying emergency cancel=true": lambda pic: _cancel(pic, "a-9-1-1", cot_type="b-a-o-tbl"),
        "b-a-o-can under another uid linked to the same device": lambda pic: _cancel(pic, "other", link="dev-a"),
    }
    for form, cancel in forms.items():
        pic = picture()
        alice, bob = pic.join("a"), pic.join("b")
        pic.send(alice, _alert(pic))
        pic.send(bob, cancel(pic))
        assert pic.emergencies.active == {}, form
        assert pic.emergencies.refused == 0, form


def test_a_cancel_from_outside_the_alerts_groups_is_refused() -> None:
    pic = picture()
    red, blue = pic.join("red", groups("Red")), pic.join("blue", groups("Blue"))
    pic.send(red, _alert(pic))
    pic.send(blue, _cancel(pic, "a-9-1-1"))
    pic.send(blue, _cancel(pic, "x", link="dev-a"))
    assert set(pic.emergencies.active) == {"a-9-1-1"} and pic.emergencies.refused == 1


def test_an_alert_uid_held_in_other_groups_is_not_taken_over() -> None:
    pic = picture()
    red, blue = pic.join("red", groups("Red")), pic.join("blue", groups("Blue"))
    pic.send(red, _alert(pic))
    pic.send(blue, _alert(pic))
    assert pic.emergencies.active["a-9-1-1"].origin.session_id == "red" and pic.emergencies.refused == 1


async def test_alerts_repeat_until_cancelled() -> None:
    pic = picture()
    pic.emergencies.repeat_s = 0.001
    alice, bob = pic.join("a"), pic.join("b")
    pic.send(alice, _alert(pic, "a-9-1-1", "dev-a"))
    pic.send(alice, _alert(pic, "b-9-1-1", "dev-b", "b-a-o-pan"))
    repeats: list[str] = []
    # Every cycle repeats every active alert, so a repeat of b after the cancel proves a full cycle ran.
    cycle_after_cancel = asyncio.Event()

    def republish(envelope: Envelope) -> None:
        repeats.append(envelope.event.uid)
        pic.ingest.republish(envelope)
        if repeats.count("a-9-1-1") == 2 and "a-9-1-1" in pic.emergencies.active:
            pic.send(bob, _cancel(pic, "a-9-1-1"))
            repeats.append("cancelled")
        elif "cancelled" in repeats and repeats[-1] == "b-9-1-1" and repeats.count("b-9-1-1") > 3:
            cycle_after_cancel.set()

    await _repeat_until(pic, republish, cycle_after_cancel)
    cancelled_at = repeats.index("cancelled")
    assert "a-9-1-1" not in repeats[cancelled_at:]
    assert repeats.count("a-9-1-1") == 2 and pic.emergencies.repeats >= 5
    repeated = [e for e in bob.received if e.repeat]
    assert {e.event.uid for e in repeated} == {"a-9-1-1", "b-9-1-1"}
    assert not any(e.repeat for e in alice.received), "repeats never go back to the alert's sender"


async def test_alerts_older_than_the_max_age_stop_repeating() -> None:
    pic = picture()
    pic.emergencies.repeat_s = 0.001
    pic.emergencies.max_age_ms = 60_000
    alice = pic.join("a")
    pic.send(alice, _alert(pic, "old-9-1-1", "dev-old"))
    pic.clock.advance(61)
    pic.send(alice, _alert(pic, "new-9-1-1", "dev-new"))
    repeats: list[str] = []
    # One cycle looks at every alert: the first repeat of the fresh one ends a cycle that saw the old one.
    cycled = asyncio.Event()

    def republish(envelope: Envelope) -> None:
        repeats.append(envelope.event.uid)
        cycled.set()

    await _repeat_until(pic, republish, cycled)
    assert "old-9-1-1" not in repeats and set(pic.emergencies.active) == {"new-9-1-1"}
