"""Queue checks: a lane learns the peer's mark before it sends; a queue older than the mark starts a new epoch.

Two real ``PeerLink``s wired back to back as in ``test_replay.py``. alpha's ``federation.db`` is
replaced by a copy taken earlier, as after a restore from an older backup: same epoch, lower numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.federation.convert import SYNC_TYPE, acknowledgement, sync_event, sync_request
from rallypoint.federation.link import PeerLink
from tests.support.federation import copy_queue
from tests.support.poll import wait_until
from tests.unit.federation.test_link_budget import PEER, _envelope, _persisted
from tests.unit.federation.test_replay import ALPHA, Side, _deliver, _drain, _side, _stop


async def _exchange(alpha: Side, bravo: Side) -> None:
    """Run alpha's connection to bravo until neither has anything left to send."""
    while True:
        await wait_until(lambda: _settled(alpha.link), "alpha's queue settled")
        sent = _drain(alpha.link)
        await _deliver(sent, bravo.link)
        answers = _drain(bravo.link)
        await _deliver(answers, alpha.link)
        if not sent and not answers:
            return


def _settled(link: PeerLink) -> bool:
    return all(lane.ahead is None and not lane.unpersisted and not lane.writing for lane in link._lanes)


def test_a_check_names_the_lane_and_epoch_with_seq_zero() -> None:
    msg = sync_event("alpha#urgent", 1000, "00ff")
    assert msg.event.type == SYNC_TYPE and not msg.federateGroups
    check = sync_request(msg)
    assert check is not None and (check.node, check.seq, check.epoch) == ("alpha#urgent", 0, "00ff")
    assert acknowledgement(msg) is None


async def test_a_queue_restored_from_an_older_backup_starts_a_new_epoch_and_every_message_arrives_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        for i in range(2):
            alpha.link.offer(_envelope(clock, f"old-{i}", "b-t-f"))
        await _persisted(alpha.link, 2)
        alpha.link.attach(peer_answers=True)
        await _exchange(alpha, bravo)
        assert alpha.link.unacked == 0
        # Queued while bravo is away: still unacknowledged in the backup.
        for i in range(2):
            alpha.link.offer(_envelope(clock, f"queued-{i}", "b-t-f"))
        await _persisted(alpha.link, 2)
    finally:
        await _stop(alpha)
    copy_queue(tmp_path / "alpha", tmp_path / "backup")
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        alpha.link.attach(peer_answers=True)
        for i in range(3):
            alpha.link.offer(_envelope(clock, f"later-{i}", "b-t-f"))
        await _persisted(alpha.link, 5)
        await _exchange(alpha, bravo)
        assert alpha.link.unacked == 0
        epoch = alpha.link._message.epoch
    finally:
        await _stop(alpha)
    copy_queue(tmp_path / "backup", tmp_path / "alpha")
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        lane = alpha.link._message
        assert (lane.epoch, lane.next_seq, lane.acked) == (epoch, 5, 2)
        # Numbered 5..9 in the restored epoch before the link is up: bravo holds up to 7 of it.
        for i in range(5):
            alpha.link.offer(_envelope(clock, f"new-{i}", "b-t-f"))
        await _persisted(alpha.link, 7)
        alpha.link.attach(peer_answers=True)
        first = _drain(alpha.link)
        assert [m.event.type for m in first] == [SYNC_TYPE, SYNC_TYPE]
        await _deliver(first, bravo.link)
        with caplog.at_level(logging.WARNING, logger="rallypoint.federation"):
            await _deliver(_drain(bravo.link), alpha.link)
            await _exchange(alpha, bravo)
        assert lane.epoch not in ("", epoch)
        expected = [*(f"old-{i}" for i in range(2)), *(f"queued-{i}" for i in range(2)),
                    *(f"later-{i}" for i in range(3)), *(f"new-{i}" for i in range(5))]
        assert bravo.accepted == expected
        assert alpha.link.unacked == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert (
            f"federation queue for peer bravo restored from an older state (peer acknowledged 7, queue at 4); "
            f"new epoch {lane.epoch}" in warnings
        )
        assert f"peer alpha queue reset (new epoch {lane.epoch})" in warnings
    finally:
        await _stop(alpha)
    # The new epoch and its numbering are what the next start finds.
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        assert (alpha.link._message.epoch, alpha.link._message.next_seq, alpha.link._message.acked) == (
            lane.epoch, 6, 5)
        alpha.link.offer(_envelope(clock, "after", "b-t-f"))
        await _persisted(alpha.link, 1)
        alpha.link.attach(peer_answers=True)
        await _exchange(alpha, bravo)
        assert bravo.accepted == [*expected, "after"]
    finally:
        await _stop(alpha)
        await _stop(bravo)


async def test_the_answer_to_a_check_retires_what_the_peer_holds_and_releases_the_lane(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        for i in range(3):
            alpha.link.offer(_envelope(clock, f"chat-{i}", "b-t-f"))
        await _persisted(alpha.link, 3)
        alpha.link.attach(peer_answers=True)
        await _deliver(_drain(alpha.link), bravo.link)
        await _deliver(_drain(bravo.link), alpha.link)
        await _deliver(_drain(alpha.link), bravo.link)
        _drain(bravo.link)  # the acknowledgements are lost with the connection
        assert alpha.link.unacked == 3
        epoch = alpha.link._message.epoch
        alpha.link.attach(peer_answers=True)
        with caplog.at_level(logging.WARNING, logger="rallypoint.federation"):
            checks = _drain(alpha.link)
            assert [m.event.type for m in checks] == [SYNC_TYPE, SYNC_TYPE]
            await _deliver(checks, bravo.link)
            await _deliver(_drain(bravo.link), alpha.link)
        # bravo's mark retired all three: nothing is sent again, the epoch stays.
        assert alpha.link.unacked == 0 and _drain(alpha.link) == []
        assert alpha.link._message.epoch == epoch
        assert bravo.accepted == [f"chat-{i}" for i in range(3)]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await _stop(alpha)
        await _stop(bravo)


async def test_without_an_answer_a_checked_lane_sends_nothing(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        alpha.link.offer(_envelope(clock, "chat", "b-t-f"))
        await _persisted(alpha.link, 1)
        alpha.link.attach(peer_answers=True)
        assert [m.event.type for m in _drain(alpha.link)] == [SYNC_TYPE, SYNC_TYPE]
        assert alpha.link.queue_depth == 1
        # A peer that does not answer checks (TAK Server) gets the message at once.
        alpha.link.attach(peer_answers=False)
        assert [m.event.type for m in _drain(alpha.link)] == ["b-t-f"]
    finally:
        await _stop(alpha)
