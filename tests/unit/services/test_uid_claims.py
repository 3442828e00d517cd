"""UidClaims deciding held reports (``services/uid_claims.py``) over the real routing core, without NATS.

The NATS side (creating and watching keys) is covered by ``tests/integration/test_cluster_uid_claims.py``;
here the cluster's decision is handed in through :meth:`UidClaims.decided`, as the bucket watch does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rallypoint.bus.nats import NatsBus
from rallypoint.security.policy import SPOOFED_UID
from rallypoint.services.claim_hold import ClaimHold
from rallypoint.services.uid_claims import UidClaims
from tests.support.picture import Picture, picture
from tests.support.poll import wait_until

UID = "ANDROID-contested"


@dataclass
class _Session:
    """What UidClaims needs of a live transport session: its id, its transport, and close()."""

    id: str
    transport_name: str = "tls"
    closed: list[str] = field(default_factory=list)

    def close(self, reason: str, *, abort: bool = False) -> None:
        self.closed.append(reason)


def _claims(pic: Picture, sessions: list[_Session], hold: ClaimHold | None = None) -> UidClaims:
    # Never started: nothing here talks to NATS.
    return UidClaims(
        bus=NatsBus("nats://127.0.0.1:1", "node-a"),
        identity=pic.identity,
        presence=pic.presence,
        sessions=sessions,
        metrics=pic.metrics,
        ingest=pic.ingest,
        hold=hold,
        live=lambda session_id: pic.directory.get(session_id) is not None,
    )


def _rejected(pic: Picture) -> float:
    value = pic.metrics.registry.get_sample_value(
        "rallypoint_events_rejected_total", {"reason": SPOOFED_UID, "transport": "tls"}
    )
    return value or 0.0


def test_a_won_claim_releases_the_held_reports_to_their_receivers_in_order() -> None:
    pic = picture()
    claims = _claims(pic, [_Session("a")])
    alice, bob = pic.join("a", principal="alice"), pic.join("b", principal="bob")
    pic.identify(alice, UID, "ALICE-1")
    pic.identify(alice, UID, "ALICE-2")
    assert claims.pending == 1 and not bob.received
    claims.decided(UID, "alice")
    assert [e.event.detail.callsign for e in bob.received] == ["ALICE-1", "ALICE-2"]
    assert pic.identity.holder_of(UID) == "alice" and _rejected(pic) == 0


def test_a_lost_claim_drops_the_held_reports_as_refused_and_closes_the_session() -> None:
    pic = picture()
    mallory_session = _Session("m")
    claims = _claims(pic, [mallory_session, _Session("b")])
    mallory, bob = pic.join("m", principal="mallory"), pic.join("b", principal="bob")
    pic.identify(mallory, UID, "MALLORY-1")
    pic.identify(mallory, UID, "MALLORY-2")
    claims.decided(UID, "alice")
    assert not bob.received and not pic.published and UID not in pic.presence.sa
    assert mallory_session.closed == [SPOOFED_UID] and claims.closed == 1
    assert _rejected(pic) == 2, "each report that reached nobody is one refusal"
    assert pic.identity.holder_of(UID) == "alice"
    claims.decided(UID, "alice")  # the watch and the create answer both tell it: once is enough
    assert mallory_session.closed == [SPOOFED_UID] and _rejected(pic) == 2


async def test_an_undecided_claim_is_released_after_the_hold_time_and_the_node_goes_on() -> None:
    pic = picture()
    claims = _claims(pic, [_Session("a")], hold=ClaimHold(hold_s=0.05))
    alice, bob = pic.join("a", principal="alice"), pic.join("b", principal="bob")
    expiry = asyncio.create_task(claims.release_undecided())
    try:
        pic.identify(alice, UID, "ALICE-1")
        assert not bob.received
        await wait_until(lambda: bob.received, "the undecided report released", timeout=5.0)
        assert [e.event.detail.callsign for e in bob.received] == ["ALICE-1"]
        assert claims.hold.statistics().expired == 1 and claims.pending == 1, "the claim is still to be sent"
    finally:
        await claims.close()
        await asyncio.wait_for(expiry, 5.0)


def test_counters_name_what_the_hold_did() -> None:
    pic = picture()
    claims = _claims(pic, [])
    alice = pic.join("a", principal="alice")
    pic.identify(alice, UID, "ALICE-1")
    claims.decided(UID, "alice")
    counters = {name: value for name, _, value in claims.counters()}
    assert counters["rallypoint_uid_claim_reports_held_total"] == 1
    assert counters["rallypoint_uid_claim_reports_released_total"] == 1


def test_held_reports_of_a_session_gone_before_the_loss_are_still_counted_as_refused() -> None:
    pic = picture()
    claims = _claims(pic, [])  # the session has ended: nothing left to close
    mallory, bob = pic.join("m", principal="mallory"), pic.join("b", principal="bob")
    pic.identify(mallory, UID, "MALLORY-1")
    claims.decided(UID, "alice")
    assert not bob.received and claims.closed == 0
    value = pic.metrics.registry.get_sample_value(
        "rallypoint_events_rejected_total", {"reason": SPOOFED_UID, "transport": "stream"}
    )
    assert value == 1
