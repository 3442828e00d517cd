"""A native API app over real in-process components, for the ``test_api_*`` unit tests."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.config import Settings
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.security.accounts import AccountCache
from rallypoint.security.audit import AuditLog
from rallypoint.security.revocation import CertificateRegistry, RevocationWatcher
from rallypoint.security.tokens import KEY_FILE, TokenService
from rallypoint.security.users import Role, UserAccounts
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
from rallypoint.web.api.native import NativeApi
from rallypoint.web.context import TokenIdentities, WebContext
from rallypoint.web.peers import PeerCertificates

NOW = 1_700_000_000_000
PASSWORD = "correct horse battery"


class RecordingAuditor(AuditRecorder):
    """Keeps what would be audited, in order."""

    def __init__(self, audit: AuditLog, clock: ManualClock) -> None:
        super().__init__(audit, clock)
        self.entries: list[tuple[str, str, str, dict[str, str]]] = []

    def record(self, actor: str, action: str, target: str, detail: dict[str, str] | None = None) -> None:
        self.entries.append((actor, action, target, detail or {}))

    def actions(self) -> list[str]:
        return [a for _, a, _, _ in self.entries]


class FakeSubscriber:
    """A connected receiver that keeps what it is offered."""

    def __init__(self, sub_id: str, groups: set[str]) -> None:
        self.id = sub_id
        self.read_groups = frozenset(groups)
        self.write_groups = frozenset(groups)
        self.received: list[Envelope] = []

    def offer(self, envelope: Envelope) -> None:
        self.received.append(envelope)


class Harness:
    """The API under test, its context and helpers to populate the picture."""

    def __init__(self, tmp: Path) -> None:
        self.clock = ManualClock(NOW)
        self.data_dir = tmp
        directory = Directory()
        bus = LocalBus("node-test")
        bus.subscribe(Dispatcher(directory).deliver)
        presence = Presence(directory)
        self.emergencies = EmergencyService(self.clock)
        self.store = MemoryEventStore()
        ingest = Ingest(directory=directory, router=Router(directory), bus=bus, presence=presence,
                        emergencies=self.emergencies, writer=None, metrics=ServerMetrics(), clock=self.clock)
        self.users = UserAccounts(SqliteUserRecords(tmp / "users.db"), clock=self.clock,
                                     hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.auditor = RecordingAuditor(AuditLog(SqliteAuditRecords(tmp / "audit.db")), self.clock)
        (tmp / "ca").mkdir()
        settings = Settings(data_dir=str(tmp))
        tokens = TokenService(open_stores("sqlite://", tmp).tokens(), key_path=tmp / KEY_FILE, clock=self.clock,
                              ttl_s=settings.token_ttl_s)
        accounts = AccountCache()
        self.ctx = WebContext(
            settings=settings, clock=self.clock, directory=directory,
            presence=presence, ingest=ingest, accounts=accounts, users=self.users, auditor=self.auditor,
            store=self.store, metrics=ServerMetrics(), sessions=SessionSet(), peers=PeerCertificates(),
            revocations=RevocationWatcher(CertificateRegistry(tmp / "ca")), emergencies=self.emergencies,
            tokens=tokens, token_identity=TokenIdentities(tokens, self.users, accounts),
        )
        self._serve()

    def rebuild(self, **changes: Any) -> None:
        """Serve the API over a context with ``changes`` (the context is frozen: the node builds it whole).

        The new API registers its metrics again, so it gets fresh ``ServerMetrics`` unless given some.
        """
        self.ctx = dataclasses.replace(self.ctx, **{"metrics": ServerMetrics(), **changes})
        self._serve()

    def _serve(self) -> None:
        self.api = NativeApi(self.ctx)
        self.app = Starlette(routes=list(self.api.routes))
        self.http = TestClient(self.app, base_url="http://127.0.0.1")

    def add_user(self, name: str, groups: set[str], *, role: Role = Role.MEMBER, password: str = PASSWORD) -> None:
        asyncio.run(self.users.add(name, password=password, role=role, groups_in=groups, groups_out=groups))

    def token(self, name: str, password: str = PASSWORD) -> str:
        answer = self.http.post("/api/auth/token", auth=(name, password))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def connect(self, sub_id: str, uid: str, callsign: str, groups: set[str], **kw: float) -> FakeSubscriber:
        """A connected client in ``groups`` that has sent its self-SA."""
        sub = FakeSubscriber(sub_id, groups)
        self.ctx.directory.add(sub)
        self.ctx.directory.bind(sub_id, uid=uid)
        self.inject(sa_event(uid, callsign, **kw), sub_id, groups)
        return sub

    def inject(self, event: CotEvent, session_id: str, groups: set[str], principal: str | None = None) -> None:
        self.ctx.ingest.accept(Envelope(event, Origin(session_id, frozenset(groups), principal), self.clock.now_ms()))


def sa_event(uid: str, callsign: str, *, lat: float = 10.0, lon: float = 20.0, group: str = "Cyan") -> CotEvent:
    detail = f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/><__group name="{group}" role="Team Member"/>'
    return make_event(uid=uid, type="a-f-G-U-C", how="m-g", time=NOW, start=NOW, stale=NOW + 300_000,
                      point=Point(lat, lon, 5.0), detail_xml=detail.encode())


def marker(uid: str, *, lat: float = 1.0, lon: float = 2.0, cot_type: str = "a-h-G") -> CotEvent:
    return make_event(uid=uid, type=cot_type, how="h-g-i-g-o", time=NOW, start=NOW, stale=NOW + 300_000,
                      point=Point(lat, lon, 0.0), detail_xml=b'<link uid="x" type="a-f-G" relation="p-p"/>')


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture(name="harness")
def harness_fixture(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    with h.http:
        yield h
    asyncio.run(h.users.close())
    asyncio.run(h.api.close())
