"""MailboxRecords contract: kept mail, cursors, out-of-order deliveries, recipients and purging."""

from __future__ import annotations

from rallypoint.storage.base.mailbox import MailboxBatch, MailboxRecords, MailRecord, RecipientRecord, SeenRecord

NOW = 1_700_000_000_000


def mail(seq: int, *, expires: int = NOW + 60_000) -> MailRecord:
    return MailRecord(
        seq=seq,
        xml=f"<event uid='{seq}'/>".encode(),
        groups=frozenset({"Red", "A,B"}),
        priority=1,
        created_ms=NOW,
        expires_ms=expires,
    )


def who(identity: str, seen: int = NOW, groups: frozenset[str] = frozenset({"Red"})) -> RecipientRecord:
    return RecipientRecord(
        identity=identity,
        uid=identity.removeprefix("uid:"),
        callsign=None,
        principal=None,
        read_groups=groups,
        last_seen_ms=seen,
    )


async def test_an_empty_store_starts_at_one(mailbox_records: MailboxRecords) -> None:
    state = mailbox_records.load_state(NOW)
    assert (state.next_seq, state.pending, state.cursors, state.recipients, state.seen) == (1, {}, {}, [], [])


async def test_mail_waits_per_identity_until_the_cursor_passes_it(mailbox_records: MailboxRecords) -> None:
    await mailbox_records.apply(
        MailboxBatch(
            mails=((mail(1), ("uid:B", "uid:C")), (mail(2), ("uid:B",)), (mail(3), ("uid:B",))),
            recipients=(who("uid:C", NOW + 1), who("uid:B", NOW)),
        )
    )
    await mailbox_records.apply(MailboxBatch(cursors=(("uid:B", 1),), delivered=(("uid:B", 3),)))
    state = mailbox_records.load_state(NOW)
    assert [m.seq for m in state.pending["uid:B"]] == [2]
    assert [m.seq for m in state.pending["uid:C"]] == [1]
    assert state.pending["uid:C"][0] == mail(1)
    assert state.cursors == {"uid:B": 1}
    assert state.recipients == [who("uid:B", NOW), who("uid:C", NOW + 1)]  # oldest seen first
    assert state.next_seq == 4


async def test_cursors_only_move_forward_and_a_batch_written_twice_changes_nothing(
    mailbox_records: MailboxRecords,
) -> None:
    batch = MailboxBatch(mails=((mail(1), ("uid:B",)), (mail(2), ("uid:B",))))
    await mailbox_records.apply(batch)
    await mailbox_records.apply(batch)
    await mailbox_records.apply(MailboxBatch(cursors=(("uid:B", 1),)))
    await mailbox_records.apply(MailboxBatch(cursors=(("uid:B", 0),)))
    state = mailbox_records.load_state(NOW)
    assert state.cursors == {"uid:B": 1}
    assert [m.seq for m in state.pending["uid:B"]] == [2]


async def test_recipients_are_replaced_and_forgotten_with_their_mail(mailbox_records: MailboxRecords) -> None:
    await mailbox_records.apply(
        MailboxBatch(mails=((mail(1), ("uid:B", "uid:C")),), recipients=(who("uid:B"), who("uid:C")))
    )
    await mailbox_records.apply(
        MailboxBatch(recipients=(who("uid:B", NOW + 5, frozenset({"Blue"})),), forget=("uid:C",))
    )
    state = mailbox_records.load_state(NOW)
    assert state.recipients == [who("uid:B", NOW + 5, frozenset({"Blue"}))]
    assert list(state.pending) == ["uid:B"]


async def test_purge_removes_expired_and_delivered_but_sequence_numbers_never_go_back(
    mailbox_records: MailboxRecords,
) -> None:
    await mailbox_records.apply(
        MailboxBatch(
            mails=(
                (mail(1), ("uid:B",)),
                (mail(2, expires=NOW - 1), ("uid:B",)),
                (mail(3), ("uid:C",)),
            )
        )
    )
    await mailbox_records.apply(MailboxBatch(cursors=(("uid:B", 1),)))
    assert await mailbox_records.purge(NOW) == 2
    state = mailbox_records.load_state(NOW)
    assert list(state.pending) == ["uid:C"]
    await mailbox_records.apply(MailboxBatch(cursors=(("uid:C", 3),)))
    assert await mailbox_records.purge(NOW) == 1
    assert mailbox_records.load_state(NOW).next_seq == 4


async def test_expired_mail_is_not_loaded(mailbox_records: MailboxRecords) -> None:
    await mailbox_records.apply(MailboxBatch(mails=((mail(1, expires=NOW + 10), ("uid:B",)),)))
    assert [m.seq for m in mailbox_records.load_state(NOW + 9).pending["uid:B"]] == [1]
    assert mailbox_records.load_state(NOW + 10).pending == {}


def seen(identity: str, uid: str, time: int, *, expires: int = NOW + 60_000) -> SeenRecord:
    return SeenRecord(identity=identity, uid=uid, time=time, expires_ms=expires)


async def test_seen_messages_are_kept_once_per_identity_in_message_order_until_they_expire(
    mailbox_records: MailboxRecords,
) -> None:
    batch = MailboxBatch(
        seen=(
            seen("uid:C", "m1", NOW + 2),
            seen("uid:B", "m1", NOW + 2),
            seen("uid:B", "m0", NOW + 1, expires=NOW + 10),
        )
    )
    await mailbox_records.apply(batch)
    await mailbox_records.apply(batch)  # written twice: nothing more
    # Another version of an item (a later time) is another message; a seen row outlives its identity's mail.
    await mailbox_records.apply(MailboxBatch(seen=(seen("uid:B", "m1", NOW + 3),), forget=("uid:B",)))
    assert mailbox_records.load_state(NOW).seen == [
        seen("uid:B", "m0", NOW + 1, expires=NOW + 10),
        seen("uid:B", "m1", NOW + 2),
        seen("uid:B", "m1", NOW + 3),
        seen("uid:C", "m1", NOW + 2),
    ]
    assert [r.uid for r in mailbox_records.load_state(NOW + 10).seen] == ["m1", "m1", "m1"]
    assert await mailbox_records.purge(NOW + 10) == 0  # seen rows are no message rows
    await mailbox_records.apply(MailboxBatch(seen=(seen("uid:B", "m0", NOW + 1, expires=NOW + 10),)))
    assert len(mailbox_records.load_state(NOW).seen) == 4  # purged, then seen again
    await mailbox_records.purge(NOW + 60_000)
    assert mailbox_records.load_state(0).seen == []
