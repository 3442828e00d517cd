"""Kept mail for a session of another node: handed over on the bus, written there, reported back.

The holding node (the one a message entered, which keeps it) publishes each message for a session
of another node with an empty, delivery-only audience and a *mail tag* in its origin (the
delivering node, the session, the recipient identity and the message's ``seq``), so no dispatcher
delivers it as ordinary traffic. The delivering node offers it to that session as a
:class:`~rallypoint.services.mailbox_inflight.MailEnvelope` and reports back on the bus (a
``t-x-rp-mail`` event, ``MESSAGE`` class: JetStream) when the session has written it to its
socket, or failed when the session left first. The holder retires written mail and puts failed
mail back in the box, as it does for its own sessions.

A client that comes back on another node just after a message was kept for it can get that
message live there (the node resolved its uid when the publication arrived) and then from the
holder's mailbox. The delivering node remembers, per recipient identity, the addressed messages
of other nodes it delivered (live, or as kept mail it wrote), and reports such mail written
instead of writing it again. That memory is durable: each entry is a *seen* row of the node's own
mailbox store (:class:`~rallypoint.storage.base.mailbox.SeenRecord`), loaded at start and kept
until the message would expire, so a restart (or ``kill -9``) of the delivering node does not
make it write the message again when the holder hands it over once more.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.model.cot_type import Priority
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.mailbox_inflight import MailEnvelope
from rallypoint.storage.base.mailbox import SeenRecord

log = logging.getLogger(__name__)

MAIL_REPORT_TYPE = "t-x-rp-mail"
_TAG_PREFIX = "mailbox "
_ORIGIN_POINT = Point(0.0, 0.0)
_REPORT_STALE_MS = 60_000


class MailTag(msgspec.Struct, frozen=True):
    """Which session of which node a kept message is for, and which message of whose box it is."""

    node: str
    session: str
    identity: str
    seq: int


class MailReport(msgspec.Struct, frozen=True):
    """The delivering node's answer: ``written`` to the session's socket, or not (the session left).

    A report with a ``uid`` (and ``seq`` 0) says the identity got the holder's message ``(uid,
    time)`` live (:meth:`RemoteMail.report_live`); nodes that do not know these fields ignore them.
    """

    holder: str
    session: str
    identity: str
    seq: int
    written: bool
    uid: str | None = None
    time: int = 0


_tag_encoder = msgspec.json.Encoder()
_tag_decoder = msgspec.json.Decoder(MailTag)
_report_decoder = msgspec.json.Decoder(MailReport)


def tagged_origin(tag: MailTag, groups: frozenset[str]) -> Origin:
    """The origin of a kept message handed to a session of another node."""
    return Origin(session_id=_TAG_PREFIX + _tag_encoder.encode(tag).decode(), groups=groups)


def read_tag(origin: Origin) -> MailTag | None:
    """The mail tag of an origin, None when it is not kept mail for another node's session."""
    session_id = origin.session_id
    if not session_id.startswith(_TAG_PREFIX):
        return None
    try:
        return _tag_decoder.decode(session_id[len(_TAG_PREFIX) :])
    except msgspec.DecodeError:
        return None


def read_report(event: CotEvent) -> MailReport | None:
    """The report a ``t-x-rp-mail`` event carries; None when malformed."""
    try:
        return _report_decoder.decode(event.detail.xml)
    except msgspec.DecodeError:
        return None


def message_key(event: CotEvent) -> tuple[str, int]:
    """One message: a chat's uid is unique, an item's uid is reused by its next version (later time)."""
    return (event.uid, event.time)


class LiveDeliveries:
    """Per recipient identity, the last addressed messages of other nodes delivered here.

    Bounded in memory (the last ``per_identity`` messages of the last ``identities`` identities);
    each new entry is also handed to ``keep`` (the mailbox writer: a durable seen row), and
    ``records`` (the seen rows loaded at start) fill it again after a restart.
    """

    def __init__(
        self,
        *,
        per_identity: int = 64,
        identities: int = 4096,
        records: Iterable[SeenRecord] = (),
        keep: Callable[[SeenRecord], None] | None = None,
    ) -> None:
        self._per_identity = per_identity
        self._identities = identities
        self._seen: OrderedDict[str, deque[tuple[str, int]]] = OrderedDict()
        for record in records:
            self._append(record.identity, (record.uid, record.time))
        self._keep = keep

    def add(self, identity: str, key: tuple[str, int], *, expires_ms: int = 0) -> None:
        """``identity`` got the message ``key``; it is remembered (durably) until ``expires_ms``."""
        if (identity, key) in self:
            return
        self._append(identity, key)
        if self._keep is not None:
            self._keep(SeenRecord(identity=identity, uid=key[0], time=key[1], expires_ms=expires_ms))

    def _append(self, identity: str, key: tuple[str, int]) -> None:
        keys = self._seen.get(identity)
        if keys is None:
            keys = self._seen[identity] = deque(maxlen=self._per_identity)
            if len(self._seen) > self._identities:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(identity)
        keys.append(key)

    def __contains__(self, item: tuple[str, tuple[str, int]]) -> bool:
        identity, key = item
        keys = self._seen.get(identity)
        return keys is not None and key in keys


@dataclass(frozen=True)
class RemoteSession:
    """A session of another node as the holding mailbox sees it: an address on the bus, never offered to."""

    id: str
    read_groups: frozenset[str]
    write_groups: frozenset[str]
    node: str
    # Its node reports each message written or not.
    confirms_writes = True

    def offer(self, envelope: Envelope) -> None:
        """Mail for it is published with a mail tag (:meth:`tagged`)."""
        raise TypeError("a session of another node is reached through the bus")

    def tagged(self, mail: MailEnvelope) -> Envelope:
        """``mail`` as published for this session: tagged, so that only its node's mailbox takes it."""
        tag = MailTag(node=self.node, session=self.id, identity=mail.identity, seq=mail.seq)
        return Envelope(mail.event, tagged_origin(tag, mail.origin.groups), mail.received_ms, priority=mail.priority)


class RemoteMail:
    """The delivering side: offers another node's kept mail to local sessions and reports the writes."""

    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        *,
        node: str,
        publish: Callable[[Envelope, Audience], object],
        ttl_ms: int = 24 * 3600 * 1000,
        seen: Iterable[SeenRecord] = (),
        keep_seen: Callable[[SeenRecord], None] | None = None,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._node = node
        self._publish = publish
        self._ttl_ms = ttl_ms
        self.live = LiveDeliveries(records=seen, keep=keep_seen)
        # session id -> (holder, identity, seq) -> the message offered and not yet written.
        self._flying: dict[str, dict[tuple[str, str, int], MailEnvelope]] = {}
        self.duplicates = 0
        self.reports = 0
        self.malformed = 0

    def deliver_through(self, publish: Callable[[Envelope, Audience], object]) -> None:
        """Publish reports with ``publish`` (the node's bus)."""
        self._publish = publish

    def saw(self, identity: str, event: CotEvent) -> None:
        """``identity`` got ``event`` (of another node) here: remember it for as long as it could be kept."""
        expires = min(event.stale, self._clock.now_ms() + self._ttl_ms)
        self.live.add(identity, message_key(event), expires_ms=expires)

    def report_live(self, holder: str, session_id: str, identity: str, event: CotEvent) -> None:
        """Tell ``holder`` that ``identity`` got its message ``event`` live here (it may keep it too)."""
        self._send(
            MailReport(holder, session_id, identity, 0, True, uid=event.uid, time=event.time),
            f"rp-mail-{holder}-live-{identity}-{event.uid}-{event.time}",
        )

    def hand_over(self, session: RemoteSession, envelopes: Iterable[Envelope]) -> None:
        """Kept mail to a session of another node, in order.

        The publication reaches no dispatcher: it carries a mail tag the session's node's mailbox
        reads (written reports come back by identity and seq).
        """
        for envelope in envelopes:
            if isinstance(envelope, MailEnvelope):
                self._publish(session.tagged(envelope), Audience(delivery_only=True))

    def receive(self, envelope: Envelope) -> MailReport | None:
        """Another node's delivery-only publication: mail tagged for a session here is offered to it.

        Returns the report it carries when it is a report on mail this node handed over.
        Malformed tags and reports are counted and logged, and go no further.
        """
        if envelope.event.type == MAIL_REPORT_TYPE:
            report = read_report(envelope.event)
            if report is None:
                self._refuse(envelope, "report")
                return None
            return report if report.holder == self._node else None
        if not envelope.origin.session_id.startswith(_TAG_PREFIX):
            return None
        tag = read_tag(envelope.origin)
        if tag is None:
            self._refuse(envelope, "tag")
        elif self.is_mine(tag):
            self.deliver(envelope, tag)
        return None

    def _refuse(self, envelope: Envelope, what: str) -> None:
        self.malformed += 1
        log.warning("malformed mail %s refused", what, extra={"node": envelope.origin.node, "uid": envelope.event.uid})

    def is_mine(self, tag: MailTag) -> bool:
        """Whether the tagged message is for a session of this node."""
        return tag.node == self._node

    def deliver(self, envelope: Envelope, tag: MailTag) -> None:
        """Offer a tagged message to its session here, or report at once why it is not written."""
        holder = envelope.origin.node
        sub = self._directory.get(tag.session)
        if sub is None:
            self._report(holder, tag.session, tag.identity, tag.seq, written=False)
            return
        if (tag.identity, message_key(envelope.event)) in self.live:
            # It reached this recipient live already: for the holder it is delivered.
            self.duplicates += 1
            self._report(holder, tag.session, tag.identity, tag.seq, written=True)
            return
        mail = MailEnvelope(
            envelope.event,
            Origin(session_id=envelope.origin.session_id, groups=envelope.origin.groups),
            envelope.received_ms,
            priority=envelope.priority,
            identity=tag.identity,
            seq=tag.seq,
            session_id=tag.session,
            on_written=partial(self._written, holder),
        )
        self._flying.setdefault(tag.session, {})[(holder, tag.identity, tag.seq)] = mail
        # Local by nature: the bus already brought this mail to the node of its session; it is
        # wrapped here so that the socket write can be reported back to the holder.
        sub.offer(mail)

    def left(self, session_id: str) -> None:
        """A local session left: what it had not written goes back to its holders' boxes."""
        for holder, identity, seq in self._flying.pop(session_id, {}):
            self._report(holder, session_id, identity, seq, written=False)

    def _written(self, holder: str, mail: MailEnvelope) -> None:
        flying = self._flying.get(mail.session_id)
        if flying is None or flying.pop((holder, mail.identity, mail.seq), None) is None:
            return  # the session left first and the mail was reported not written
        if not flying:
            del self._flying[mail.session_id]
        # Handed over again (its holder restarted before it read the report): reported, not rewritten.
        self.saw(mail.identity, mail.event)
        self._report(holder, mail.session_id, mail.identity, mail.seq, written=True)

    def _report(self, holder: str, session_id: str, identity: str, seq: int, *, written: bool) -> None:
        self._send(MailReport(holder, session_id, identity, seq, written), f"rp-mail-{holder}-{seq}-{identity}")

    def _send(self, report: MailReport, uid: str) -> None:
        now = self._clock.now_ms()
        payload = _tag_encoder.encode(report)
        # The report rides in the detail as JSON: this event is never encoded for a socket.
        event = CotEvent(
            uid=uid,
            type=MAIL_REPORT_TYPE,
            how="h-g-i-g-o",
            time=now,
            start=now,
            stale=now + _REPORT_STALE_MS,
            point=_ORIGIN_POINT,
            detail=Detail(xml=payload),
        )
        self.reports += 1
        self._publish(
            Envelope(event, Origin(session_id="mailbox"), now, priority=Priority.MESSAGE), Audience(delivery_only=True)
        )
