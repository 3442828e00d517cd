"""Loop prevention: an envelope of another node is delivered where it arrives, never published again."""

from __future__ import annotations

from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.picture import NODE, Receiver, marker, picture

CLOCK = ManualClock()


def _bus() -> tuple[LocalBus, list[Envelope]]:
    bus = LocalBus(NODE)
    seen: list[Envelope] = []
    bus.subscribe(lambda envelope, audience: seen.append(envelope))
    return bus, seen


def test_own_envelopes_are_published() -> None:
    bus, seen = _bus()
    envelope = Envelope(marker(CLOCK, "m-1"), Origin(session_id="s", node=NODE), 0)
    bus.publish(envelope, Audience())
    assert seen == [envelope] and bus.statistics().published == 1


def test_an_envelope_without_a_node_is_stamped_as_this_nodes() -> None:
    bus, seen = _bus()
    envelope = Envelope(marker(CLOCK, "m-1"), Origin(session_id="server"), 0)
    bus.publish(envelope, Audience())
    assert seen == [envelope] and envelope.origin.node == NODE and envelope.origin.session_id == "server"


def test_an_envelope_of_another_node_is_not_published_again() -> None:
    bus, seen = _bus()
    bus.publish(Envelope(marker(CLOCK, "m-1"), Origin(session_id="s", node="node-b"), 0), Audience())
    assert seen == [] and bus.statistics().foreign_refused == 1 and bus.statistics().published == 0


def test_a_remote_alert_repeated_here_is_this_nodes_repeat() -> None:
    # The repeater lease holder repeats every alert of the cluster, whichever node it entered.
    pic = picture()
    pic.join("local")
    remote = Receiver("node-b:r:tls-1")
    alert_origin = Origin(session_id=remote.id, node="node-b")
    alert = Envelope(marker(pic.clock, "a-9-1-1"), alert_origin, 0, repeat=True)
    pic.ingest.republish(alert)
    assert [e.origin.node for e in pic.published] == [NODE] and pic.bus.statistics().foreign_refused == 0
    assert pic.published[0].origin.session_id == remote.id


def test_events_sent_by_a_local_session_carry_this_node() -> None:
    pic = picture()
    alice, bob = pic.join("a"), pic.join("b")
    pic.send(alice, marker(pic.clock, "m-1"))
    assert [e.origin.node for e in bob.received] == [NODE]
