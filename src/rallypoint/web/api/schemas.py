"""Request and response bodies of the native API (also the source of the OpenAPI components)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from rallypoint.model.mission import ChangeType, Role
from rallypoint.web.drawings import Drawing

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="Account name")]
Group = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="TAK group name")]
GroupList = Annotated[list[Group], msgspec.Meta(max_length=64)]
RoleName = Literal["member", "approver", "admin"]
ChatText = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error answer: a short stable label and a human-readable explanation."""

    error: str
    detail: str = ""


class TokenResponse(msgspec.Struct, frozen=True):
    """A bearer token (OAuth 2 style field names)."""

    access_token: str
    token_type: str
    expires_in: int


class Position(msgspec.Struct, frozen=True):
    """WGS-84 position; ``hae`` metres above the ellipsoid (9999999 = unknown)."""

    lat: float
    lon: float
    hae: float


class DeliveryInfo(msgspec.Struct, frozen=True):
    """How delivery to a client's session is going (shown to admins): outbox, byte budget, back-pressure.

    ``queued``/``queued_bytes``: waiting in its outbox now; ``coalesced``: queued positions replaced by
    a newer one; ``dropped``: overflow or stale; ``thinned``: positions skipped by its budget;
    ``held``: thinned uids whose latest position is still to go; ``budget_bytes_per_s``: 0 when none.
    """

    session: str
    queued: int
    queued_bytes: int
    coalesced: int
    dropped: int
    thinned: int
    held: int
    budget_bytes_per_s: int
    thinning: bool
    paused: bool


class ClientInfo(msgspec.Struct, frozen=True):
    """A connected client, from its latest self-report (``delivery``: for admins, else null).

    ``position`` is null and ``no_fix`` true when the client reported 0,0 (no GPS fix).
    """

    uid: str
    callsign: str | None
    group: str | None
    role: str | None
    type: str
    last_seen_ms: int
    position: Position | None
    principal: str | None = None
    delivery: DeliveryInfo | None = None
    no_fix: bool = False


class Track(msgspec.Struct, frozen=True):
    """One item of the live picture: a client's own position or a persisted map item.

    ``position`` is null and ``no_fix`` true when the latest report was 0,0 (no GPS fix).
    ``drawing`` is the geometry and colours of a shape, route or spot marker (``web.drawings``).
    """

    uid: str
    type: str
    how: str
    callsign: str | None
    time_ms: int
    stale_ms: int
    position: Position | None
    kind: Literal["client", "item"]
    group: str | None = None
    speed: float | None = None
    course: float | None = None
    no_fix: bool = False
    drawing: Drawing | None = None
    # The exercise the item is simulated traffic of (docs/exercises.md); null for live traffic.
    exercise: str | None = None


class HistoryEvent(msgspec.Struct, frozen=True):
    """One stored event."""

    uid: str
    type: str
    how: str
    time_ms: int
    start_ms: int
    stale_ms: int
    position: Position
    callsign: str | None
    groups: list[str]
    xml: str
    # The exercise the event is simulated traffic of (docs/exercises.md); null for live traffic.
    exercise: str | None = None


class HistoryPage(msgspec.Struct, frozen=True):
    """Stored events in time order; ``truncated`` when more match: pass ``next`` as ``cursor`` to go on."""

    events: list[HistoryEvent]
    count: int
    truncated: bool
    next: str | None = None


class ChatRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A GeoChat message: exactly one of ``to_uid``, ``to_callsign`` or ``room``."""

    text: ChatText
    to_uid: Ref | None = None
    to_callsign: Ref | None = None
    room: Ref | None = None


class ChatResult(msgspec.Struct, frozen=True):
    """The injected chat event and how many connected receivers it was addressed to."""

    uid: str
    sender_uid: str
    chatroom: str
    recipients: int


class EmergencyInfo(msgspec.Struct, frozen=True):
    """An active emergency beacon."""

    uid: str
    type: str
    callsign: str | None
    kind: str | None
    raised_ms: int
    position: Position


class CancelResult(msgspec.Struct, frozen=True):
    """An emergency was cancelled."""

    uid: str
    cancelled: bool


class UserView(msgspec.Struct, frozen=True):
    """An account as administrators see it (never the password)."""

    name: str
    role: str
    groups_in: list[str]
    groups_out: list[str]
    disabled: bool
    has_password: bool
    created_ms: int
    updated_ms: int
    locked_until_ms: int | None = None


class UserCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A new account. ``groups`` sets both directions; ``groups_in``/``groups_out`` add to one."""

    name: Name
    role: RoleName = "member"
    groups: GroupList = []
    groups_in: GroupList = []
    groups_out: GroupList = []
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None


class UserPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Changes to an account; omitted fields stay. ``groups`` replaces both directions."""

    disabled: bool | None = None
    role: RoleName | None = None
    groups: GroupList | None = None
    groups_in: GroupList | None = None
    groups_out: GroupList | None = None


class RevokeResult(msgspec.Struct, frozen=True):
    """How many live tokens were revoked."""

    revoked: int


class GeoJsonGeometry(msgspec.Struct, frozen=True):
    """A GeoJSON Point ``[lon, lat, hae]``, or a drawing's LineString ``[[lon, lat], ...]`` or Polygon."""

    type: Literal["Point", "LineString", "Polygon"]
    coordinates: list[Any]


class GeoJsonFeature(msgspec.Struct, frozen=True):
    """A track as a GeoJSON Feature (``id`` is the uid); ``geometry`` is null without a position fix."""

    type: Literal["Feature"]
    id: str
    geometry: GeoJsonGeometry | None
    properties: dict[str, str | int | float | None]


class GeoJsonCollection(msgspec.Struct, frozen=True):
    """The live picture as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[GeoJsonFeature]


class PackageInfo(msgspec.Struct, frozen=True):
    """A stored data package the caller may read; ``download_url`` serves its content."""

    hash: str
    name: str
    size: int
    mime: str
    keywords: list[str]
    tool: str
    submitter: str
    creator_uid: str
    submitted: str
    groups: list[str]
    download_url: str


class MissionInfo(msgspec.Struct, frozen=True):
    """A Data Sync mission the caller can see (``created`` is ISO 8601 UTC)."""

    name: str
    guid: str
    description: str
    tool: str
    creator_uid: str
    created: str
    groups: list[str]
    keywords: list[str]
    contents_count: int
    uids_count: int


class MissionContentRef(msgspec.Struct, frozen=True):
    """A data package in a mission, by SHA-256."""

    hash: str
    name: str


class MissionDetail(MissionInfo, frozen=True):
    """A mission with its contents, uids, subscriber count and the caller's role in it."""

    contents: list[MissionContentRef]
    uids: list[str]
    subscribers: int
    role: Role


class PackageUploaded(PackageInfo, frozen=True):
    """An upload was kept; ``created`` is False when the same content was already stored."""

    created: bool


class Deleted(msgspec.Struct, frozen=True):
    """Something named by ``id`` was removed."""

    id: str
    deleted: bool


MissionName = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Short = Annotated[str, msgspec.Meta(max_length=1024)]
Keyword = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{64}$", description="SHA-256, 64 hex digits")]


class MissionCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A new mission; ``groups`` empty means the caller's write groups. ``uid`` is the caller's device
    (subscribed as owner), by default its API sender uid."""

    name: MissionName
    description: Short = ""
    groups: GroupList = []
    tool: Annotated[str, msgspec.Meta(max_length=64)] = "public"
    keywords: Annotated[list[Keyword], msgspec.Meta(max_length=32)] = []
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    default_role: Role = Role.SUBSCRIBER
    invite_only: bool = False
    uid: Ref | None = None


class MissionSubscribe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Subscribe a device uid (default: the caller's API sender uid); ``password`` for protected missions."""

    uid: Ref | None = None
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None


class SubscriptionView(msgspec.Struct, frozen=True):
    """A subscription: the device uid that hears the mission's changes, and its role."""

    mission: str
    uid: str
    role: Role
    created_ms: int
    token: str | None = None


class MissionContentsChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Data packages (by SHA-256, each readable by the caller) and CoT uids to add to a mission."""

    hashes: Annotated[list[Digest], msgspec.Meta(max_length=256)] = []
    uids: Annotated[list[Ref], msgspec.Meta(max_length=256)] = []


class MissionChangeView(msgspec.Struct, frozen=True):
    """One entry of a mission's change log."""

    type: ChangeType
    mission: str
    creator_uid: str
    time_ms: int
    content_hash: str | None = None
    content_uid: str | None = None


EmergencyKind = Literal["911 Alert", "Ring The Bell", "Geo-fence Breached", "In Contact"]


class EmergencyRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Raise an emergency at a position, as the caller (``callsign`` defaults to the account name)."""

    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    kind: EmergencyKind = "911 Alert"
    hae: Annotated[float, msgspec.Meta(ge=-100_000, le=10_000_000)] = 9999999.0
    callsign: Ref | None = None


class GroupInfo(msgspec.Struct, frozen=True):
    """A TAK group: accounts that read (IN) and write (OUT) it, and certificate names configured in it."""

    name: str
    readers: list[str]
    writers: list[str]
    certificates: list[str]


COMPONENTS: tuple[type, ...] = (
    ErrorBody, TokenResponse, ClientInfo, Track, HistoryPage, ChatRequest, ChatResult, EmergencyInfo,
    CancelResult, UserView, UserCreate, UserPatch, RevokeResult, GeoJsonCollection, PackageInfo, MissionInfo,
    MissionDetail, PackageUploaded, Deleted, MissionCreate, MissionSubscribe, SubscriptionView,
    MissionContentsChange, MissionChangeView, EmergencyRequest, GroupInfo,
)
