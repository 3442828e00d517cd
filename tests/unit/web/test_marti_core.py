"""Core Marti endpoints on a context built from real components (directory, presence, ingest, bus)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from rallypoint import __version__
from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.config import Settings
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.security.accounts import AccountCache
from rallypoint.security.audit import AuditLog
from rallypoint.security.revocation import CertificateRegistry, RevocationWatcher
from rallypoint.security.tokens import KEY_FILE, TokenService
from rallypoint.security.users import UserAccounts
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence
from rallypoint.storage.factory import open_stores
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.sqlite.audit import SqliteAuditRecords
from rallypoint.storage.sqlite.users import SqliteUserRecords
from rallypoint.transport.context import SessionSet
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.features import Feature
from rallypoint.web.marti import core
from rallypoint.web.peers import PeerCertificates

RED = RequestIdentity("red", frozenset({"Red"}), frozenset({"Red"}))
BLUE = RequestIdentity("blue", frozenset({"Blue"}), frozenset({"Blue"}))
BOTH = RequestIdentity("both", frozenset({"Red", "Blue"}), frozenset({"Red", "Blue"}))
IDENTITIES = {i.principal: i for i in (RED, BLUE, BOTH)}


@dataclass
class FakeSession:
    """A streaming session stand-in: a directory subscriber that records what it receives."""

    id: str
    principal: str | None
    write_groups: frozenset[str]
    read_groups: frozenset[str]
    directory: Directory
    received: list[Envelope] = field(default_factory=list)
    last_rx: float = 0.0
    cert_serial: int | None = None

    def offer(self, envelope: Envelope) -> None:
        self.received.append(envelope)

    def regroup(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> bool:
        old = self.read_groups
        self.write_groups, self.read_groups = write_groups, read_groups
        self.directory.regroup(self, old)
        return True

    def close(self, reason: str, *, abort: bool = False) -> None:
        return None

    def flush_and_close(self) -> None:
        return None

    def statistics(self) -> dict[str, int]:
        return {}

    def uids(self) -> set[str]:
        return {e.event.uid for e in self.received}


@dataclass
class Harness:
    ctx: WebContext
    clock: ManualClock

    def connect(self, who: RequestIdentity, session_id: str) -> FakeSession:
        session = FakeSession(session_id, who.principal, who.write_groups, who.read_groups, self.ctx.directory)
        self.ctx.directory.add(session)
        self.ctx.sessions.add(session)
        return session

    def send(self, session: FakeSession, uid: str, *, callsign: str | None = None, cot_type: str = "a-f-G-U-C",
             detail: str = "") -> None:
        now = self.clock.now_ms()
        if callsign is not None:
            detail = f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/><__group name="Cyan" role="HQ"/>' + detail
        event = make_event(uid=uid, type=cot_type, how="m-g", time=now, start=now, stale=now + 300_000,
                           point=Point(1.0, 2.0), detail_xml=detail.encode())
        origin = Origin(session_id=session.id, groups=session.write_groups, principal=session.principal)
        self.ctx.ingest.accept(Envelope(event, origin, now))


def make_context(tmp_path: Path, clock: ManualClock) -> WebContext:
    """A web context from real components; callers are named by the ``x-principal`` header."""
    directory = Directory()
    bus = LocalBus("node-test")
    bus.subscribe(Dispatcher(directory).deliver)
    presence = Presence(directory)
    metrics = ServerMetrics()
    emergencies = EmergencyService(clock)
    ingest = Ingest(directory=directory, router=Router(directory), bus=bus, presence=presence,
                    emergencies=emergencies, writer=None, metrics=metrics, clock=clock)
    (tmp_path / "ca").mkdir(exist_ok=True)

    async def token_identity(conn: HTTPConnection) -> RequestIdentity | None:
        return IDENTITIES.get(conn.headers.get("x-principal", ""))

    return WebContext(
        settings=Settings(data_dir=str(tmp_path), node_id="node-test"), clock=clock,
        directory=directory, presence=presence, ingest=ingest, accounts=AccountCache(),
        users=UserAccounts(SqliteUserRecords(tmp_path / "users.db"), clock=clock),
        auditor=AuditRecorder(AuditLog(SqliteAuditRecords(tmp_path / "audit.db")), clock), store=MemoryEventStore(),
        metrics=metrics, sessions=SessionSet(), peers=PeerCertificates(),
        revocations=RevocationWatcher(CertificateRegistry(tmp_path / "ca")), token_identity=token_identity,
        emergencies=emergencies,
        tokens=TokenService(open_stores("sqlite://", tmp_path).tokens(), key_path=tmp_path / KEY_FILE, clock=clock),
    )


def client_for(feature: Feature) -> TestClient:
    return TestClient(Starlette(routes=list(feature.routes)), base_url="https://tak.example:8443")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[tuple[Harness, TestClient]]:
    clock = ManualClock()
    ctx = make_context(tmp_path, clock)
    feature = core.build(ctx)
    ctx.ingest.add_hook(feature.observe)
    with client_for(feature) as client:
        yield Harness(ctx, clock), client


def test_version_and_config(harness: tuple[Harness, TestClient]) -> None:
    _, client = harness
    r = client.get("/Marti/api/version")
    assert r.status_code == 200 and r.text == f"Rallypoint {__version__}"
    assert r.headers["content-type"].startswith("text/plain")
    doc = client.get("/Marti/api/version/config", headers={"host": "phone-facing.example:8443"}).json()
    assert doc == {
        "version": "3", "type": "ServerConfig",
        "data": {"version": __version__, "api": "3", "hostname": "phone-facing.example"}, "nodeId": "node-test",
    }


def test_client_endpoints_filtered_by_groups(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    red = h.connect(RED, "s-red")
    blue = h.connect(BLUE, "s-blue")
    h.send(red, "uid-red", callsign="REDDY")
    h.send(blue, "uid-blue", callsign="BLUEY")
    doc = client.get("/Marti/api/clientEndPoints", headers={"x-principal": "red"}).json()
    assert doc["type"] == "com.bbn.marti.remote.ClientEndpoint" and doc["version"] == "3"
    assert [e["uid"] for e in doc["data"]] == ["uid-red"]
    entry = doc["data"][0]
    assert entry["callsign"] == "REDDY" and entry["username"] == "red" and entry["lastStatus"] == "Connected"
    assert entry["team"] == "Cyan" and entry["role"] == "HQ" and entry["groups"] == ["Red"]
    assert entry["lastEventTime"].endswith("Z")
    both = client.get("/Marti/api/clientEndPoints", headers={"x-principal": "both"}).json()
    assert sorted(e["uid"] for e in both["data"]) == ["uid-blue", "uid-red"]
    only_blue = client.get("/Marti/api/clientEndPoints?group=Blue", headers={"x-principal": "both"}).json()
    assert [e["uid"] for e in only_blue["data"]] == ["uid-blue"]
    # Anonymous callers read __ANON__ only.
    assert client.get("/Marti/api/clientEndPoints").json()["data"] == []


def test_client_endpoints_sec_ago_and_disconnected(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    red = h.connect(RED, "s-red")
    h.send(red, "uid-old", callsign="OLD")
    h.clock.advance(120)
    red2 = h.connect(RED, "s-red2")
    h.send(red2, "uid-new", callsign="NEW")
    recent = client.get("/Marti/api/clientEndPoints?secAgo=60", headers={"x-principal": "red"}).json()["data"]
    assert [e["uid"] for e in recent] == ["uid-new"]
    # The first client leaves: it is listed as Disconnected, and hidden when only connected ones are asked for.
    h.ctx.presence.forget_session("s-red")
    h.ctx.directory.remove("s-red")
    listed = {e["uid"]: e["lastStatus"] for e in
              client.get("/Marti/api/clientEndPoints", headers={"x-principal": "red"}).json()["data"]}
    assert listed == {"uid-old": "Disconnected", "uid-new": "Connected"}
    connected = client.get("/Marti/api/clientEndPoints?showCurrentlyConnectedClients=true",
                           headers={"x-principal": "red"}).json()["data"]
    assert [e["uid"] for e in connected] == ["uid-new"]


def test_contacts_all_filtered(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    h.send(h.connect(RED, "s-red"), "uid-red", callsign="REDDY")
    h.send(h.connect(BLUE, "s-blue"), "uid-blue", callsign="BLUEY")
    contacts = client.get("/Marti/api/contacts/all", headers={"x-principal": "blue"}).json()
    assert [(c["uid"], c["callsign"]) for c in contacts] == [("uid-blue", "BLUEY")]


def test_groups_all_lists_both_directions(harness: tuple[Harness, TestClient]) -> None:
    _, client = harness
    doc = client.get("/Marti/api/groups/all?useCache=true", headers={"x-principal": "both"}).json()
    assert doc["type"] == "com.bbn.marti.remote.groups.Group"
    got = {(g["name"], g["direction"]) for g in doc["data"]}
    assert got == {("Red", "IN"), ("Red", "OUT"), ("Blue", "IN"), ("Blue", "OUT")}
    for g in doc["data"]:
        assert g["type"] == "SYSTEM" and g["active"] is True and isinstance(g["bitpos"], int)
    assert client.get("/Marti/api/groups/user", headers={"x-principal": "red"}).json()["data"][0]["name"] == "Red"


def test_groups_active_deactivation_stops_delivery(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    both = h.connect(BOTH, "s-both")
    red = h.connect(RED, "s-red")
    blue = h.connect(BLUE, "s-blue")
    h.send(both, "uid-both", callsign="BOTH")
    h.send(red, "red-1")
    h.send(blue, "blue-1")
    assert {"red-1", "blue-1"} <= both.uids()
    body = [{"name": "Blue", "direction": "OUT", "active": False}, {"name": "Red", "direction": "OUT", "active": True}]
    r = client.put("/Marti/api/groups/active?clientUid=uid-both", json=body, headers={"x-principal": "both"})
    assert r.status_code == 200
    h.send(red, "red-2")
    h.send(blue, "blue-2")
    assert "red-2" in both.uids() and "blue-2" not in both.uids()
    groups = client.get("/Marti/api/groups/all", headers={"x-principal": "both"}).json()["data"]
    active = {(g["name"], g["direction"]): g["active"] for g in groups}
    assert active[("Blue", "OUT")] is False and active[("Red", "OUT")] is True and active[("Blue", "IN")] is True
    # Reactivating restores delivery.
    body = [{"name": "Blue", "direction": "OUT", "active": True}]
    assert client.put("/Marti/api/groups/active?clientUid=uid-both", json=body,
                      headers={"x-principal": "both"}).status_code == 200
    h.send(blue, "blue-3")
    assert "blue-3" in both.uids()


def test_groups_active_refuses_other_principals_session(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    both = h.connect(BOTH, "s-both")
    h.send(both, "uid-both", callsign="BOTH")
    body = [{"name": "Red", "direction": "OUT", "active": False}]
    r = client.put("/Marti/api/groups/active?clientUid=uid-both", json=body, headers={"x-principal": "red"})
    assert r.status_code == 404
    assert both.read_groups == frozenset({"Red", "Blue"})
    r = client.put("/Marti/api/groups/active?clientUid=uid-both", content=b"{not json",
                   headers={"x-principal": "both"})
    assert r.status_code == 400


def test_cot_xml_group_checked(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    red = h.connect(RED, "s-red")
    h.send(red, "marker-red", cot_type="b-m-p-s-m", detail='<contact callsign="M1"/>')
    r = client.get("/Marti/api/cot/xml/marker-red", headers={"x-principal": "red"})
    assert r.status_code == 200 and b'uid="marker-red"' in r.content
    assert client.get("/Marti/api/cot/xml/marker-red", headers={"x-principal": "blue"}).status_code == 404
    assert client.get("/Marti/api/cot/xml/nothing-here", headers={"x-principal": "red"}).status_code == 404
