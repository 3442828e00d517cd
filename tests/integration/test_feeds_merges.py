"""A TAK user and an APRS tracker in the same vehicle, end to end: a real server with an APRS-IS feed
dialling a fake APRS-IS server on loopback, a PyTAK client driving and reporting its position. The
tracker proposes the pair through the API; only when an admin accepts does the APRS track leave
the map (``t-x-d-d``), and the tracker's reports then update the user's track: one object. The
accepted merge holds after a restart."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.client import AsyncRallypointClient
from rallypoint.client.http import ApiError
from tests.integration.test_feeds import Picture, SbsSource, pytak_picture
from tests.support.accounts import PASSWORDS, create_users
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

USER = "ANDROID-feedmerge0001"
CALL = "N0CALL-9"
LAT0, LON0 = 51.9, 4.1
SPEED_MPS = 10 * 1852 / 3600  # 10 knots north, what the APRS packet says


def position_at(started: float) -> tuple[float, float]:
    """Where the vehicle is now: north from (LAT0, LON0) at SPEED_MPS since ``started``."""
    return LAT0 + SPEED_MPS * (time.monotonic() - started) / 111_200.0, LON0


def aprs_packet(lat: float, lon: float) -> bytes:
    """An APRS-IS line: uncompressed position, car symbol, course 360, speed 10 knots."""
    lat_text = f"{int(lat):02d}{(lat - int(lat)) * 60:05.2f}N"
    lon_text = f"{int(lon):03d}{(lon - int(lon)) * 60:05.2f}E"
    return f"{CALL}>APRS,TCPIP*,qAC,T2TEST:!{lat_text}/{lon_text}>360/010\r\n".encode()


def user_event(lat: float, lon: float) -> bytes:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 120))
    return (
        f'<event version="2.0" uid="{USER}" type="a-f-G-U-C" how="m-g" time="{stamp}" start="{stamp}" '
        f'stale="{stale}"><point lat="{lat:.7f}" lon="{lon:.7f}" hae="10" ce="8" le="9999999"/>'
        f'<detail><contact callsign="WOLF"/><track course="0" speed="{SPEED_MPS:.2f}"/></detail></event>'
    ).encode()


@contextlib.asynccontextmanager
async def driving(server: ServerProcess, aprs: SbsSource) -> AsyncIterator[asyncio.Task[None]]:
    """The user's PyTAK client and the APRS tracker report where the vehicle is, twice a second."""
    parser = configparser.ConfigParser()
    parser["user"] = {"COT_URL": f"tcp://127.0.0.1:{server.ports['cot']}"}
    _reader, writer = await pytak.protocol_factory(parser["user"])
    started = time.monotonic()

    async def report() -> None:
        while True:
            lat, lon = position_at(started)
            writer.write(user_event(lat, lon))
            await writer.drain()
            await aprs.send(aprs_packet(lat, lon))
            await asyncio.sleep(0.5)  # the report rate of the simulated devices, not synchronisation

    task = asyncio.create_task(report())
    try:
        yield task
    finally:
        task.cancel()
        writer.close()


async def wait_for(check: object, what: str, timeout: float = 30.0) -> object:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()  # type: ignore[operator]
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def aprs_observations(admin: AsyncRallypointClient) -> int:
    return int({f["name"]: f for f in await admin.feeds()}["aprs"]["statistics"]["observations"])


@pytest.fixture
async def aprs_is() -> AsyncIterator[SbsSource]:
    source = SbsSource()  # a line server on loopback: every connected feed gets what is sent
    await source.start()
    yield source
    with contextlib.suppress(AssertionError):
        await source.drop()


def removals(picture: Picture) -> list[str]:
    return [uid for uid, seen in picture.seen.items() if any(t == "t-x-d-d" for t, _ in seen)]


async def test_an_aprs_tracker_in_a_tak_users_vehicle_is_merged_only_when_accepted(
    data_dir: Path, aprs_is: SbsSource
) -> None:
    create_users(data_dir)
    feed = f"aprs+tcp://127.0.0.1:{aprs_is.port}?login=N0CALL&name=aprs"
    with ServerProcess(data_dir, "--feed", feed) as server:
        base = f"http://127.0.0.1:{server.ports['http']}"
        async with (
            AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin,
            AsyncRallypointClient(base, username="alice", password=PASSWORDS["alice"]) as member,
            pytak_picture(server.ports["cot"]) as picture,
        ):
            await wait_for(lambda: asyncio.sleep(0, aprs_is.writers), "the feed dialled the APRS-IS server")
            async with driving(server, aprs_is):
                await wait_for(lambda: asyncio.sleep(0, f"APRS-{CALL}" in picture.seen), "the APRS track")
                proposals = await wait_for(admin.merge_proposals, "a merge proposal")
                (proposal,) = proposals  # type: ignore[misc]
                assert (proposal["primary"], proposal["secondary"]) == (f"TAK-{USER}", f"APRS-{CALL}")
                assert proposal["primary_identity"] == {"kind": "tak", "value": USER}
                assert proposal["distance_m"] < 100
                # Proposed, not merged: the APRS track is still on the map, the user's own track never is.
                assert removals(picture) == [] and f"TAK-{USER}" not in picture.seen
                with pytest.raises(ApiError) as refused:
                    await member.accept_merge(proposal["id"])
                assert refused.value.status == 403
                with pytest.raises(ApiError) as unknown:
                    await admin.accept_merge("mp-999")
                assert unknown.value.status == 404 and unknown.value.error == "no_proposal"

                accepted = await admin.accept_merge(proposal["id"])
                assert accepted["id"] == proposal["id"]
                await wait_for(lambda: asyncio.sleep(0, removals(picture)), "the APRS track deleted on the map")
                assert removals(picture) == [f"APRS-{CALL}.delete"]
                said = len(picture.seen[f"APRS-{CALL}"])
                # The tracker keeps reporting; its reports now go to the user's track, which is not said.
                count = await aprs_observations(admin)
                await wait_for(lambda: _more(admin, count + 6), "six more APRS reports decoded")
                assert len(picture.seen[f"APRS-{CALL}"]) == said
                assert await admin.merge_proposals() == []
                feed_uids = {uid for uid in picture.seen if uid.startswith(("APRS-", "TAK-", "trk-"))}
                assert feed_uids == {f"APRS-{CALL}", f"APRS-{CALL}.delete"}
            assert USER in picture.seen  # the user's own position reached the other client all along

    # After a restart the accepted merge is read back: the tracker never shows as a track of its own.
    aprs_is.writers.clear()
    with ServerProcess(data_dir, "--feed", feed) as server:
        base = f"http://127.0.0.1:{server.ports['http']}"
        async with (
            AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin,
            pytak_picture(server.ports["cot"]) as picture,
        ):
            await wait_for(lambda: asyncio.sleep(0, aprs_is.writers), "the feed dialled the APRS-IS server again")
            async with driving(server, aprs_is):
                await wait_for(lambda: _more(admin, 10), "ten APRS reports decoded after the restart")
                assert f"APRS-{CALL}" not in picture.seen and USER in picture.seen
                assert await admin.merge_proposals() == []


async def _more(admin: AsyncRallypointClient, count: int) -> bool:
    return await aprs_observations(admin) >= count
