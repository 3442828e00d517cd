"""A raw-socket CoT client for tests: writes bytes, collects every event it receives."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits

LIMITS = Limits()
END = b"</event>"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cot(
    uid: str,
    cot_type: str = "a-f-G-U-C",
    *,
    detail: str = "",
    lat: float = 39.1,
    lon: float = -120.0,
    stale_s: float = 300.0,
    how: str = "m-g",
) -> bytes:
    """A CoT event with current times."""
    now = datetime.now(UTC)
    return (
        f'<event version="2.0" uid="{uid}" type="{cot_type}" how="{how}" time="{iso(now)}" '
        f'start="{iso(now)}" stale="{iso(now + timedelta(seconds=stale_s))}">'
        f'<point lat="{lat}" lon="{lon}" hae="100.0" ce="10.0" le="10.0"/>'
        f"<detail>{detail}</detail></event>"
    ).encode()


def uid_of(message: bytes) -> str:
    """The uid of an event built by :func:`cot`, :func:`sa` or :func:`chat` (its first ``uid`` attribute)."""
    found = re.search(rb'uid="([^"]+)"', message)
    assert found is not None, message
    return found.group(1).decode()


def sa(uid: str, callsign: str, *, group: str = "Cyan", extra: str = "", **kw: object) -> bytes:
    """A self-SA (PLI) like ATAK's."""
    detail = (
        f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/><__group name="{group}" role="Team Member"/>'
        f'<takv platform="test" version="1" device="pytest" os="linux"/>{extra}'
    )
    return cot(uid, detail=detail, **kw)  # type: ignore[arg-type]


def chat(sender_uid: str, sender_cs: str, *, to_uid: str | None, to_cs: str | None, text: str,
         room: str | None = None, marti: bool = True) -> bytes:
    """A GeoChat message; ``to_uid=None`` means All Chat Rooms."""
    msg_id = uuid.uuid4()
    if to_uid is None:
        room = room or "All Chat Rooms"
        chat_el = (f'<__chat parent="RootContactGroup" groupOwner="false" chatroom="{room}" id="{room}" '
                   f'senderCallsign="{sender_cs}"><chatgrp uid0="{sender_uid}" uid1="{room}" id="{room}"/></__chat>')
        dest = ""
    else:
        chat_el = (f'<__chat parent="RootContactGroup" groupOwner="false" chatroom="{to_cs}" id="{to_uid}" '
                   f'senderCallsign="{sender_cs}">'
                   f'<chatgrp uid0="{sender_uid}" uid1="{to_uid}" id="{to_uid}"/></__chat>')
        dest = f'<marti><dest callsign="{to_cs}"/></marti>' if marti else ""
    detail = (f'{chat_el}<link uid="{sender_uid}" type="a-f-G-U-C" relation="p-p"/>'
              f'<remarks source="BAO.F.ATAK.{sender_uid}" time="{iso(datetime.now(UTC))}">{text}</remarks>{dest}')
    return cot(f"GeoChat.{sender_uid}.{room or to_cs}.{msg_id}", "b-t-f", detail=detail, how="h-g-i-g-o",
               lat=0.0, lon=0.0, stale_s=86400)


class CotClient:
    """Connects over TCP or TLS; ``events`` fills as events arrive (framing on ``</event>``)."""

    def __init__(self) -> None:
        self.events: list[CotEvent] = []
        self.raw: list[bytes] = []
        self._buf = b""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, port: int, *, ssl_context: ssl.SSLContext | None = None,
                      host: str = "127.0.0.1", wait_registered: bool = True) -> CotClient:
        client = cls()
        client._reader, client._writer = await asyncio.open_connection(host, port, ssl=ssl_context)
        client._task = asyncio.create_task(client._read())
        if wait_registered:
            # The server sends its protocol offer once the session is registered: from then on,
            # everything routed reaches this client.
            await client.wait_for(lambda e: e.type == "t-x-takp-v", timeout=10)
        return client

    async def _read(self) -> None:
        from rallypoint.errors import RemoteProtocolError
        from rallypoint.protocol.xml_codec import parse_event

        assert self._reader is not None
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    break
                self._buf += chunk
                while (end := self._buf.find(END)) >= 0:
                    frame, self._buf = self._buf[: end + len(END)], self._buf[end + len(END):]
                    start = frame.find(b"<event")
                    if start < 0:
                        continue
                    frame = frame[start:]
                    self.raw.append(frame)
                    try:
                        self.events.append(parse_event(frame, LIMITS))
                    except RemoteProtocolError:
                        pass
                    self._changed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def wait_for(self, predicate: Callable[[CotEvent], bool], timeout: float = 5.0) -> CotEvent:
        """The first received event matching ``predicate`` (waits on arrivals, with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed.is_set():
                raise AssertionError(
                    f"no matching event within {timeout}s; got {[(e.type, e.uid) for e in self.events]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                pass

    async def wait_uid(self, uid: str, timeout: float = 5.0) -> CotEvent:
        return await self.wait_for(lambda e: e.uid == uid, timeout)

    def has(self, predicate: Callable[[CotEvent], bool]) -> bool:
        return any(predicate(e) for e in self.events)

    async def barrier(self, other: CotClient, timeout: float = 5.0) -> None:
        """Make sure everything ``other`` sent before now has been routed: send a marker to self via other.

        The server processes a connection's events in order, so once a later event from ``other``
        arrives here, every earlier one has been routed (and, if meant for us, delivered).
        """
        marker = f"barrier-{uuid.uuid4()}"
        await other.send(cot(marker, "a-f-G-U-C"))
        await self.wait_uid(marker, timeout)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
