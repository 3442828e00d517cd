"""POST /api/chat: GeoChat from the caller, addressed within the caller's groups, strictly validated."""

from __future__ import annotations

from rallypoint.model.cot_type import ALL_CHAT_ROOMS
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def _setup(h: Harness) -> dict[str, str]:
    h.add_user("alice", {"A"})
    return h.bearer("alice")


def test_direct_chat_reaches_only_the_recipient(harness: Harness) -> None:
    alice = _setup(harness)
    friend = harness.connect("s-f", "uid-f", "FRIEND", {"A"})
    other = harness.connect("s-o", "uid-o", "OTHER", {"A"})
    answer = harness.http.post("/api/chat", headers=alice, json={"text": "meet at <RV> & wait", "to_uid": "uid-f"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["sender_uid"] == "rallypoint-api-alice" and body["recipients"] == 1 and body["chatroom"] == "FRIEND"
    chats = [e for e in friend.received if e.event.type == "b-t-f"]
    assert len(chats) == 1
    envelope = chats[0]
    assert envelope.origin.session_id == "api:alice" and envelope.origin.groups == frozenset({"A"})
    assert envelope.origin.principal == "alice"
    assert envelope.event.detail.link_uid == "rallypoint-api-alice"
    assert envelope.event.detail.chat is not None and envelope.event.detail.chat.sender_callsign == "alice"
    assert b"meet at &lt;RV&gt; &amp; wait" in envelope.event.detail.xml
    assert not [e for e in other.received if e.event.type == "b-t-f"]


def test_chat_by_callsign(harness: Harness) -> None:
    alice = _setup(harness)
    friend = harness.connect("s-f", "uid-f", "FRIEND", {"A"})
    answer = harness.http.post("/api/chat", headers=alice, json={"text": "hi", "to_callsign": "FRIEND"})
    assert answer.status_code == 201
    assert [e.event.type for e in friend.received].count("b-t-f") == 1


def test_chat_to_another_group_looks_like_an_unknown_recipient(harness: Harness) -> None:
    alice = _setup(harness)
    stranger = harness.connect("s-b", "uid-b", "BRAVO", {"B"})
    for body in ({"text": "hi", "to_uid": "uid-b"}, {"text": "hi", "to_callsign": "BRAVO"},
                 {"text": "hi", "to_uid": "nobody"}):
        answer = harness.http.post("/api/chat", headers=alice, json=body)
        assert answer.status_code == 404 and answer.json()["error"] == "recipient_unreachable"
    assert not [e for e in stranger.received if e.event.type == "b-t-f"]


def test_room_chat_goes_to_the_callers_groups_only(harness: Harness) -> None:
    alice = _setup(harness)
    friend = harness.connect("s-f", "uid-f", "FRIEND", {"A"})
    stranger = harness.connect("s-b", "uid-b", "BRAVO", {"B"})
    answer = harness.http.post("/api/chat", headers=alice, json={"text": "all", "room": ALL_CHAT_ROOMS})
    assert answer.status_code == 201 and answer.json()["recipients"] == 1
    assert [e.event.type for e in friend.received].count("b-t-f") == 1
    assert not [e for e in stranger.received if e.event.type == "b-t-f"]
    team = harness.http.post("/api/chat", headers=alice, json={"text": "team", "room": "Ops"})
    assert team.status_code == 201
    assert [e.event.type for e in friend.received].count("b-t-f") == 2


def test_invalid_bodies_are_refused_with_clear_errors(harness: Harness) -> None:
    alice = _setup(harness)
    harness.connect("s-f", "uid-f", "FRIEND", {"A"})
    post = harness.http.post
    cases = [
        ({"text": "x", "to_uid": "uid-f", "room": "r"}, 422),
        ({"text": "x"}, 422),
        ({"text": "", "to_uid": "uid-f"}, 422),
        ({"text": "x" * 5000, "to_uid": "uid-f"}, 422),
        ({"text": "bell\x07", "to_uid": "uid-f"}, 422),
        ({"text": "x", "to_uid": "uid-f", "extra": 1}, 422),
        ({"text": 5, "to_uid": "uid-f"}, 422),
        ([1, 2], 422),
    ]
    for body, status in cases:
        answer = post("/api/chat", headers=alice, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"] == "invalid" and answer.json()["detail"]
    bad_json = post("/api/chat", headers={**alice, "Content-Type": "application/json"}, content=b"{nope")
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "bad_json"
    xml = post("/api/chat", headers={**alice, "Content-Type": "application/xml"}, content=b"<a/>")
    assert xml.status_code == 415
    huge = post("/api/chat", headers={**alice, "Content-Type": "application/json"},
                content=b" " * (harness.ctx.settings.max_http_body_bytes + 1))
    assert huge.status_code == 413
