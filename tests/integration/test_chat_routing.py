"""GeoChat addressing over real sockets: team rooms, user-defined groups and the real ATAK chat samples."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from tests.conftest import SAMPLES
from tests.support.cot_client import CotClient, cot, iso, sa
from tests.support.samples import fresh
from tests.support.server import ServerProcess

# The people of samples 04 and 05 (uids and callsigns exactly as the samples carry them).
DEMO2 = ("ANDROID-d8c7f552857ee744", "DEMO2")
TRON = ("ANDROID-304275b91c93405e", "TRON")
HUMMER = ("S-1-5-21-3476584777-3751678839-889941227-17669", "HUMMER")


async def _join(server: ServerProcess, clients: list[object], people: list[tuple[str, str, str]]) -> list[CotClient]:
    """Connect one client per (uid, callsign, team) and wait until everyone has seen everyone's SA,
    so the server knows each uid, callsign and team before a message is routed."""
    joined = []
    for uid, callsign, team in people:
        client = await CotClient.connect(server.ports["cot"])
        clients.append(client)
        await client.send(sa(uid, callsign, group=team))
        joined.append(client)
    for client, (own, _, _) in zip(joined, people, strict=True):
        for uid, _, _ in people:
            if uid != own:
                await client.wait_uid(uid)
    return joined


def _chats(client: CotClient, uid: str) -> int:
    return sum(1 for e in client.events if e.uid == uid)


def team_chat(sender_uid: str, sender_cs: str, team: str, text: str, *, marti: str = "") -> tuple[str, bytes]:
    """A GeoChat to a team room as ATAK writes it (``parent="TeamGroups"``, room = team colour)."""
    uid = f"GeoChat.{sender_uid}.{team}.{uuid.uuid4()}"
    detail = (
        f'<__chat parent="TeamGroups" groupOwner="false" chatroom="{team}" id="{team}" senderCallsign="{sender_cs}">'
        f'<chatgrp uid0="{sender_uid}" uid1="{team}" id="{team}"/></__chat>'
        f'<link uid="{sender_uid}" type="a-f-G-U-C" relation="p-p"/>'
        f'<remarks source="BAO.F.ATAK.{sender_uid}" to="{team}" time="{iso(datetime.now(UTC))}">{text}</remarks>'
        f"{marti}"
    )
    return uid, cot(uid, "b-t-f", detail=detail, how="h-g-i-g-o", lat=0.0, lon=0.0, stale_s=86400)


async def test_team_chat_reaches_only_members_of_that_team(server: ServerProcess, clients: list[object]) -> None:
    a, cyan, yellow, cyan2 = await _join(server, clients, [
        ("uid-A", "A", "Cyan"), ("uid-B", "B", "Cyan"), ("uid-C", "C", "Yellow"), ("uid-D", "D", "Cyan"),
    ])
    uid, message = team_chat("uid-A", "A", "Cyan", "cyan only")
    await a.send(message)
    await cyan.wait_uid(uid)
    await cyan2.wait_uid(uid)
    # The Yellow member is in the same server group, so only the team rule keeps the message away.
    await yellow.barrier(a)
    assert _chats(yellow, uid) == 0, "a Cyan team message reached a Yellow team member"
    await a.barrier(cyan)
    assert _chats(a, uid) == 0, "the sender got its own team message back"


async def test_team_chat_follows_a_member_who_changes_team(server: ServerProcess, clients: list[object]) -> None:
    a, b, c = await _join(server, clients, [("uid-A", "A", "Red"), ("uid-B", "B", "Red"), ("uid-C", "C", "Blue")])
    await c.send(sa("uid-C", "C", group="Red"))
    await b.wait_for(lambda e: e.uid == "uid-C" and e.detail.group_name == "Red")
    uid, message = team_chat("uid-A", "A", "Red", "welcome")
    await a.send(message)
    await c.wait_uid(uid)
    await b.send(sa("uid-B", "B", group="Blue"))
    await c.wait_for(lambda e: e.uid == "uid-B" and e.detail.group_name == "Blue")
    second, message = team_chat("uid-A", "A", "Red", "still red?")
    await a.send(message)
    await c.wait_uid(second)
    await b.barrier(a)
    assert _chats(b, uid) == 1 and _chats(b, second) == 0, "team chat did not follow B's move from Red to Blue"


async def test_user_group_chat_reaches_exactly_the_listed_uids(server: ServerProcess, clients: list[object]) -> None:
    sender, tron, hummer, other = await _join(server, clients, [
        (*DEMO2, "Cyan"), (*TRON, "Cyan"), (*HUMMER, "Cyan"), ("uid-OTHER", "OTHER", "Cyan"),
    ])
    sample = fresh((SAMPLES / "05_chat_group_atak_takserver_comment.xml").read_bytes())
    # Without <marti> the group's chatgrp (uid1..uidN) is the address list.
    message = re.sub(rb"\s*<marti>.*?</marti>", b"", sample, flags=re.S)
    assert b"<marti" not in message and b'uid2="S-1-5-21' in message
    uid = "GeoChat.ANDROID-d8c7f552857ee744.testing.eb47ce94-efdc-4841-a9a7-6ee061200355"
    await sender.send(message)
    got = await tron.wait_uid(uid)
    await hummer.wait_uid(uid)
    assert got.detail.chat is not None and got.detail.chat.members == (DEMO2[0], TRON[0], HUMMER[0])
    await other.barrier(sender)
    assert _chats(other, uid) == 0, "a client outside the chat group got the group message"
    await sender.barrier(tron)
    assert _chats(sender, uid) == 0


async def test_user_group_sample_with_marti_goes_to_its_dest_only(server: ServerProcess, clients: list[object]) -> None:
    sender, tron, hummer, other = await _join(server, clients, [
        (*DEMO2, "Cyan"), (*TRON, "Cyan"), (*HUMMER, "Cyan"), ("uid-OTHER", "OTHER", "Cyan"),
    ])
    # As recorded, ATAK addressed this copy to TRON through the server (HUMMER is reached over
    # its own peer link, __serverdestination): explicit <marti> dests are the whole audience.
    await sender.send(fresh((SAMPLES / "05_chat_group_atak_takserver_comment.xml").read_bytes()))
    uid = "GeoChat.ANDROID-d8c7f552857ee744.testing.eb47ce94-efdc-4841-a9a7-6ee061200355"
    got = await tron.wait_uid(uid)
    assert got.detail.has_marti is False, "the server must strip <marti> before forwarding"
    await hummer.barrier(sender)
    await other.barrier(sender)
    assert _chats(hummer, uid) == 0 and _chats(other, uid) == 0


async def test_real_direct_chat_samples_reach_only_the_addressee(server: ServerProcess, clients: list[object]) -> None:
    sender, hummer, other, joker = await _join(server, clients, [
        (*DEMO2, "Cyan"), (*HUMMER, "Cyan"), ("uid-OTHER", "OTHER", "Cyan"), ("ANDROID-cafebabe", "JOKER MAN", "Cyan"),
    ])
    p2p = "GeoChat.ANDROID-d8c7f552857ee744.HUMMER.a77c739b-213a-4f74-879f-014175867dc9"
    direct = "GeoChat.ANDROID-deadbeef.JOKER MAN.563040b9-2ac9-4af3-9e01-4cb2b05d98ea"
    await sender.send(fresh((SAMPLES / "04_chat_p2p_atak_takserver_comment.xml").read_bytes()))
    # Sample 06 is written by another device (ANDROID-deadbeef): the server forwards what it is given.
    await other.send(fresh((SAMPLES / "06_chat_direct_atak_taky_fixture.xml").read_bytes()))
    await hummer.wait_uid(p2p)
    assert b">Roger</remarks>" in hummer.raw[[e.uid for e in hummer.events].index(p2p)]
    await joker.wait_uid(direct)
    for client, foreign in ((other, p2p), (joker, p2p), (hummer, direct), (sender, direct)):
        # Barriers through both senders: each sender's earlier events have then been routed.
        for via in (sender, other):
            if via is not client:
                await client.barrier(via)
        assert _chats(client, foreign) == 0, f"{foreign} reached a client it was not addressed to"
