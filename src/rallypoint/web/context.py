"""What HTTP features need from the node, passed explicitly, and who is making a request.

``WebContext`` is frozen and built whole by the node before any feature: state that changes at run
time lives inside the services it holds (account cache, token store, live feed), never in a
reassigned attribute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from starlette.requests import HTTPConnection

from rallypoint.clock import Clock
from rallypoint.config import Settings
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import ANON_GROUP
from rallypoint.routing.ids import NodeIds
from rallypoint.security.accounts import AccountCache
from rallypoint.security.policy import IdentityPolicy
from rallypoint.security.revocation import RevocationWatcher, serial_of
from rallypoint.security.tokens import TokenService
from rallypoint.security.users import UserAccounts, effective_groups
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.datapackages import DataPackageService
from rallypoint.services.designations import DesignationService
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.exercises import ExerciseService
from rallypoint.services.feeds import FeedService
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.missions import MissionService
from rallypoint.services.plans import PlanService
from rallypoint.services.presence import Presence
from rallypoint.services.tasks import TaskService
from rallypoint.services.video import VideoService
from rallypoint.storage.base import EventStore
from rallypoint.transport.context import SessionSet
from rallypoint.transport.tls import principal_from_peercert
from rallypoint.web.credentials import presented_token
from rallypoint.web.emergency_acks import EmergencyAcks
from rallypoint.web.peers import PeerCertificates

_ANON = frozenset({ANON_GROUP})


class RequestIdentity(msgspec.Struct, frozen=True):
    """Who is asking: the certificate (or token) principal and the groups it may write and read.

    ``principal`` is None for anonymous requests (plain HTTP on loopback), which act as ``__ANON__``.
    """

    principal: str | None
    write_groups: frozenset[str]
    read_groups: frozenset[str]
    role: str = "member"

    def can_read(self, groups: frozenset[str] | set[str]) -> bool:
        """True when the caller reads at least one of ``groups``."""
        return not self.read_groups.isdisjoint(groups)


ANONYMOUS = RequestIdentity(principal=None, write_groups=_ANON, read_groups=_ANON)


@dataclass(frozen=True)
class TokenIdentities:
    """Callers identified by a live API token (Bearer header or ``access_token`` cookie)."""

    tokens: TokenService
    users: UserAccounts
    accounts: AccountCache

    async def __call__(self, conn: HTTPConnection) -> RequestIdentity | None:
        """The identity behind a live token presented on ``conn``, else None."""
        token = presented_token(conn)
        if not token:
            return None
        principal = await self.tokens.principal_of(token)
        if principal is None:
            return None
        return await self.identity_for(principal)

    async def identity_for(self, principal: str) -> RequestIdentity | None:
        """Current groups and role of ``principal`` from the user store (None: disabled account).

        Read from the store rather than the node's cache so that a change made a moment ago
        (disable, regroup) already applies to the next request.
        """
        user = await self.users.get(principal)
        if user is not None:
            if user.disabled:
                return None
            write, read = effective_groups(user)
            return RequestIdentity(principal=user.name, write_groups=write, read_groups=read, role=str(user.role))
        access = self.accounts.access_for(principal)
        if access is None:
            return None
        return RequestIdentity(principal=principal, write_groups=access.write, read_groups=access.read)


@dataclass(frozen=True)
class WebContext:
    """Shared, explicitly passed dependencies of every HTTP feature (built by ``node.build``)."""

    settings: Settings
    clock: Clock
    directory: Directory
    presence: Presence
    ingest: Ingest
    accounts: AccountCache
    users: UserAccounts
    auditor: AuditRecorder
    store: EventStore
    metrics: ServerMetrics
    sessions: SessionSet
    peers: PeerCertificates
    revocations: RevocationWatcher
    emergencies: EmergencyService
    # The token store (OAuth and native API tokens); the native API closes it.
    tokens: TokenService
    # Extra identity sources (e.g. bearer tokens, ``TokenIdentities``) tried after the client certificate.
    token_identity: Callable[[HTTPConnection], Awaitable[RequestIdentity | None]] | None = None
    # Services closed by the Marti features that serve them, shared so other features answer from the
    # same instances; None makes the native API's package and mission endpoints answer 503.
    packages: DataPackageService | None = None
    missions: MissionService | None = None
    # Tasks (the node runs and closes the service); None makes the task endpoints answer 503.
    tasks: TaskService | None = None
    # Designations with two-person approval (closed by the node); None makes their endpoints answer 503.
    designations: DesignationService | None = None
    # Operation plans inside missions (closed by the node); None makes the plan endpoints answer 503.
    plans: PlanService | None = None
    # Which principal holds which CoT uid (the streaming identity binding), for uids named over HTTP.
    identity: IdentityPolicy | None = None
    # Tells every node (this one included) that accounts changed, so each re-applies them to its sessions.
    announce_accounts: Callable[[], None] | None = None
    # This node's id and its session ids (live feeds are sessions too); shared with the transports.
    ids: NodeIds = field(default_factory=lambda: NodeIds.start("rallypoint"))
    # Source feeds (ADS-B, AIS, APRS...): the native API's /api/feeds answers 503 without them.
    feeds: FeedService | None = None
    # Video connections (Marti video API, native /api/video); the Marti video feature runs and closes it.
    video: VideoService | None = None
    # Registered exercises and their control commands (native /api/exercises); a node feature closes it.
    exercises: ExerciseService | None = None

    # Web users' acknowledgements of active emergencies (the ack route records, the live feeds show them).
    emergency_acks: EmergencyAcks = field(default_factory=EmergencyAcks)

    async def identify(self, conn: HTTPConnection) -> RequestIdentity | None:
        """The caller of a request; ``None`` means refuse it (revoked or disabled).

        Order: client certificate (HTTPS), then token (Bearer header or ``access_token`` cookie), else
        anonymous ``__ANON__``.
        """
        der = self.peers.certificate_for(conn.scope)
        if der is not None:
            if self.revocations.is_revoked(serial_of(der)):
                return None
            principal = principal_from_peercert(der)
            access = self.accounts.access_for(principal)
            if access is None:
                return None
            user = self.accounts.user(principal)
            return RequestIdentity(
                principal=principal, write_groups=access.write, read_groups=access.read,
                role=str(user.role) if user is not None else "member",
            )
        if self.token_identity is not None:
            found = await self.token_identity(conn)
            if found is not None:
                return found
        if presented_token(conn) is not None:
            return None  # a token was presented and is not valid: never fall back to anonymous
        return ANONYMOUS

    def base_url(self, conn: HTTPConnection) -> str:
        """Absolute base URL for links handed to clients: configured public host, else the request's Host."""
        scheme = conn.url.scheme
        if self.settings.public_host:
            port = conn.url.port
            return f"{scheme}://{self.settings.public_host}" + (f":{port}" if port else "")
        host = conn.headers.get("host") or f"{conn.url.hostname}:{conn.url.port}"
        return f"{scheme}://{host}"
