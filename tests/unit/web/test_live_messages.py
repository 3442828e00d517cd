"""What the live feed says of chats and alerts: the ``Chat`` message, who a chat is addressed to,
and the ``Emergencies`` list with its acknowledgements (groups, forgetting, bounds)."""

from __future__ import annotations

import msgspec

from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.services.emergency import EmergencyService
from rallypoint.web.context import RequestIdentity
from rallypoint.web.emergency_acks import MAX_ACKS_PER_ALERT, EmergencyAcks
from rallypoint.web.live_chat import addressed_to, chat_identity, chat_message, sent_by
from tests.support.picture import chat, event

CLOCK = ManualClock(1_700_000_000_000)
READER_A = RequestIdentity(principal="alice", write_groups=frozenset({"A"}), read_groups=frozenset({"A"}))
READER_B = RequestIdentity(principal="bob", write_groups=frozenset({"B"}), read_groups=frozenset({"B"}))


def test_a_chat_message_names_its_sender_room_and_text() -> None:
    team = chat(CLOCK, "tak-1", room="Cyan", chat_id="Cyan", parent="TeamGroups")
    message = msgspec.json.decode(chat_message(team, direct=False))
    assert message == {
        "type": "Chat", "uid": team.uid, "time_ms": team.time, "sender_uid": "tak-1", "sender_callsign": "S",
        "chatroom": "Cyan", "chat_id": "Cyan", "text": "hi", "direct": False, "own": False, "team": "Cyan",
    }
    assert msgspec.json.decode(chat_message(team, direct=False, own=True))["own"] is True
    # Only the origin says who sent it: a TAK client claiming the API uid in its chat is not the user.
    claimed = chat(CLOCK, "rallypoint-api-alice", room="All Chat Rooms", chat_id="All Chat Rooms")
    assert not sent_by(Envelope(claimed, Origin(session_id="tcp-1"), 0), "alice")
    assert sent_by(Envelope(claimed, Origin(session_id="api:alice"), 0), "alice")
    assert not sent_by(Envelope(claimed, Origin(session_id="api:alice"), 0), None)
    named = chat(CLOCK, "tak-1", room="Ops room", chat_id="Ops room", parent="TeamGroups")
    assert msgspec.json.decode(chat_message(named, direct=False))["team"] is None


def test_a_chat_is_addressed_by_uid_member_or_callsign() -> None:
    uid, callsign = chat_identity("alice")
    assert (uid, callsign) == ("rallypoint-api-alice", "alice")
    by_member = chat(CLOCK, "tak-1", room="alice", chat_id=uid, members=(uid,))
    by_dest = chat(CLOCK, "tak-1", room="alice", chat_id="x", marti='<marti><dest callsign="alice"/></marti>')
    to_all = chat(CLOCK, "tak-1", room="All Chat Rooms", chat_id="All Chat Rooms")
    to_bob = chat(CLOCK, "tak-1", room="bob", chat_id="rallypoint-api-bob", members=("rallypoint-api-bob",))
    assert addressed_to(by_member, uid, callsign) and addressed_to(by_dest, uid, callsign)
    assert not addressed_to(to_all, uid, callsign) and not addressed_to(to_bob, uid, callsign)


def _alerts(*groups: str) -> EmergencyService:
    service = EmergencyService(CLOCK)
    for g in groups:
        alert = event(CLOCK, f"{g}-9-1-1", "b-a-o-tbl",
                      f'<link uid="{g}" type="a-f-G-U-C" relation="p-p"/><contact callsign="{g}-Alert"/>'
                      '<emergency type="911 Alert">X</emergency>')
        service.observe(Envelope(alert, Origin(session_id=f"s-{g}", groups=frozenset({g})), CLOCK.now_ms()))
    return service


def test_the_list_holds_the_alerts_a_caller_reads_with_their_acks() -> None:
    service, acks = _alerts("A", "B"), EmergencyAcks()
    heard: list[int] = []
    acks.listen(lambda: heard.append(1))
    assert acks.acknowledge("A-9-1-1", "carol", 5) and not acks.acknowledge("A-9-1-1", "carol", 6)
    assert acks.acknowledge("A-9-1-1", "alice", 7)
    assert heard == [1, 1]  # a repeated acknowledgement tells no one
    listed = acks.visible(service, READER_A).emergencies
    assert [(e.uid, e.callsign, e.kind, e.sender_uid, e.position) for e in listed] == [
        ("A-9-1-1", "A-Alert", "911 Alert", "A", [2.0, 1.0])]
    assert [(a.by, a.time_ms) for a in listed[0].acks] == [("carol", 5), ("alice", 7)]
    assert [e.uid for e in acks.visible(service, READER_B).emergencies] == ["B-9-1-1"]


def test_acks_go_with_their_alert_and_are_bounded() -> None:
    service, acks = _alerts("A"), EmergencyAcks()
    for i in range(MAX_ACKS_PER_ALERT + 5):
        acks.acknowledge("A-9-1-1", f"user-{i}", i)
    assert len(acks.of("A-9-1-1")) == MAX_ACKS_PER_ALERT
    del service.active["A-9-1-1"]
    assert acks.visible(service, READER_A).emergencies == []
    assert acks.of("A-9-1-1") == []
