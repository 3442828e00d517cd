"""How designations meet the rest of the node: missions they are linked to, packages they attach, shutdown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rallypoint.model.mission import Permission
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.designations import Actor, DesignationService, PackageCheck
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, MissionNotFound


class DesignationsFeature:
    """The service as a node feature without routes (the native API serves them): the node closes it."""

    def __init__(self, service: DesignationService) -> None:
        self.service = service

    @property
    def routes(self) -> tuple[()]:
        return ()

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        await self.service.close()


def package_check(find: Callable[[str, frozenset[str]], Awaitable[object | None]] | None) -> PackageCheck | None:
    """An attachment check from a package lookup ``find(hash, read_groups)`` (``DataPackageService.find``)."""
    if find is None:
        return None

    async def readable(digest: str, actor: Actor) -> bool:
        return await find(digest, actor.read_groups) is not None

    return readable


class MissionLinks:
    """Links approved designations into missions, as the proposer writing from its API device uid.

    Linking needs the proposer's write permission in the mission (a subscription of its API device
    uid, ownership, as for ``POST /api/missions/{name}/contents``), checked when proposing and again
    when the approval writes the designation in.
    """

    def __init__(self, missions: MissionService, client_uid: Callable[[str], str]) -> None:
        self._missions = missions
        self._client_uid = client_uid

    def _caller(self, actor: Actor) -> Caller:
        return Caller(principal=actor.principal, write_groups=actor.write_groups, read_groups=actor.read_groups,
                      client_uid=self._client_uid(actor.principal), uid_held=True)

    async def writable(self, name: str, actor: Actor) -> bool:
        """The mission exists, ``actor`` sees it and may write to it."""
        caller = self._caller(actor)
        try:
            mission = await self._missions.find(caller, name)
        except MissionNotFound:
            return False
        return self._missions.role_of(caller, mission).allows(Permission.WRITE)

    async def add(self, name: str, uid: str, actor: Actor) -> bool:
        """Add ``uid`` to the mission as ``actor`` (``MissionError`` when refused); True once it is there."""
        await self._missions.add(self._caller(actor), name, (), (uid,))
        return True
