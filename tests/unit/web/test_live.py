"""The live feed's subscriber (what it queues, how positions coalesce) and the browser token subprotocol."""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import CotEvent, Dest, Detail, Point
from rallypoint.model.cot_type import DELETE
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.ids import NodeIds
from rallypoint.web.context import RequestIdentity
from rallypoint.web.live import SUBPROTOCOL, LiveSubscriber, bearer_from_subprotocol

FAR_FUTURE_MS = 10**13
NOW = 1_000
IDS = NodeIds("node-test", "run")


def _envelope(uid: str, cot_type: str, *, lat: float = 1.0, link: str | None = None) -> Envelope:
    event = CotEvent(
        uid=uid, type=cot_type, how="m-g", time=NOW, start=NOW, stale=FAR_FUTURE_MS, point=Point(lat, 2.0),
        detail=Detail(link_uid=link),
    )
    return Envelope(event, Origin(session_id="s", groups=frozenset({"A"})), NOW)


def _feed() -> LiveSubscriber:
    identity = RequestIdentity(principal="alice", write_groups=frozenset({"A"}), read_groups=frozenset({"A"}))
    return LiveSubscriber(IDS.session_id("live"), identity, now_ms=lambda: NOW)


def _drain(feed: LiveSubscriber) -> list[Envelope]:
    out = []
    while (env := feed.outbox.pop(NOW)) is not None:
        out.append(env)
    return out


def test_feed_reads_with_the_callers_groups() -> None:
    feed = _feed()
    assert feed.read_groups == frozenset({"A"}) and feed.id.startswith("node-test:run:live-")
    assert _feed().id != feed.id


def test_only_what_the_page_shows_is_queued() -> None:
    feed = _feed()
    for env in (
        _envelope("receipt-1", "b-t-f-d"),
        _envelope("task-1", "t-s"),
        _envelope("del-0", DELETE),  # a delete that names nothing
    ):
        feed.offer(env)
    assert len(feed.outbox) == 0 and not feed.wake.is_set()
    # An alert is not queued: it asks the writer for the list of active alerts.
    feed.offer(_envelope("911", "b-a-o-tbl"))
    assert len(feed.outbox) == 0 and feed.emergencies_changed and feed.wake.is_set()
    kept = [_envelope("unit", "a-f-G-U-C"), _envelope("marker", "b-m-p-s-m"), _envelope("del-1", DELETE, link="x"),
            _envelope("chat-1", "b-t-f")]
    for env in kept:
        feed.offer(env)
    assert {e.event.uid for e in _drain(feed)} == {"unit", "marker", "del-1", "chat-1"}


def test_a_chat_to_the_caller_goes_to_every_feed_of_the_caller() -> None:
    fanned: list[str] = []
    identity = RequestIdentity(principal="alice", write_groups=frozenset({"A"}), read_groups=frozenset({"A"}))
    feed = LiveSubscriber(IDS.session_id("live"), identity, now_ms=lambda: NOW,
                          on_direct=lambda f, env: fanned.append(env.event.uid))
    to_me = CotEvent(uid="dm", type="b-t-f", how="h-g-i-g-o", time=NOW, start=NOW, stale=FAR_FUTURE_MS,
                     point=Point(0.0, 0.0), detail=Detail(dests=(Dest(callsign="alice"),)))
    to_other = msgspec.structs.replace(to_me, uid="dm-bob", detail=Detail(dests=(Dest(uid="rallypoint-api-bob"),)))
    feed.offer(Envelope(to_me, Origin(session_id="s", groups=frozenset({"A"})), NOW))
    feed.offer(Envelope(to_other, Origin(session_id="s", groups=frozenset({"A"})), NOW))
    assert fanned == ["dm"]  # the feed's own queue is left to the fan-out
    assert [e.event.uid for e in _drain(feed)] == ["dm-bob"]


def test_latest_position_wins_while_the_browser_is_behind() -> None:
    feed = _feed()
    reports = [_envelope("unit", "a-f-G-U-C", lat=i / 10) for i in range(100)]
    for env in reports:
        feed.offer(env)
    assert _drain(feed) == [reports[-1]]
    assert feed.outbox.statistics().coalesced == 99


def test_a_delete_overtakes_and_drops_queued_reports_of_its_uid() -> None:
    feed = _feed()
    feed.offer(_envelope("other", "a-f-G-U-C"))
    feed.offer(_envelope("unit", "a-f-G-U-C"))
    feed.offer(_envelope("del-unit", DELETE, link="unit"))
    assert [e.event.uid for e in _drain(feed)] == ["del-unit", "other"]


def _scope(headers: list[tuple[bytes, bytes]], subprotocols: list[str]) -> dict[str, object]:
    return {"type": "websocket", "headers": headers, "subprotocols": subprotocols}


def test_token_subprotocol_becomes_a_bearer_header_and_is_never_echoed() -> None:
    offered = [SUBPROTOCOL, "bearer.abc_DEF-123"]
    scope = _scope([(b"host", b"x"), (b"sec-websocket-protocol", ", ".join(offered).encode())], offered)
    rewritten = bearer_from_subprotocol(scope)
    headers = dict(rewritten["headers"])
    assert headers[b"authorization"] == b"Bearer abc_DEF-123"
    assert headers[b"sec-websocket-protocol"] == SUBPROTOCOL.encode()
    assert rewritten["subprotocols"] == [SUBPROTOCOL]
    assert scope["subprotocols"] == [SUBPROTOCOL, "bearer.abc_DEF-123"]  # the original is left alone


def test_an_authorization_header_wins_over_a_token_subprotocol() -> None:
    scope = _scope([(b"authorization", b"Bearer real")], [SUBPROTOCOL, "bearer.other"])
    assert bearer_from_subprotocol(scope) is scope
    plain = _scope([], [SUBPROTOCOL])
    assert bearer_from_subprotocol(plain) is plain
