"""Group access control on every Marti route, against the real server over HTTPS and plain HTTP.

Blue creates items (data packages, a mission with contents, uids, keywords and subscribers, SA and
a marker over TLS CoT). Red (another group, its own client certificate) and an anonymous caller on
the plain HTTP port then try every route under ``/Marti`` against them. The routes come from the
node's own features, so a new Marti route without a sweep case fails this file. Afterwards Blue's
own view of its items must be exactly what it was, and Red's stream must have heard nothing of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from rallypoint.config import Settings
from rallypoint.node.build import build_node
from rallypoint.web.app import create_app
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

M = "/Marti/api/missions"
MISSION = "BlueOp"
# Strings only Blue ever sends: no answer to an intruder may carry them, whatever it asked.
SECRETS = ("BLUEFOX", "BLUETWO", "BLUEMARK", "BLUEMM", "blue-pack.zip", "blue-pack-uid", "blue-notes.txt",
           "blue-private.txt", "bluesecretdesc", "BLUECAM", "bluecam.example")
# Blue's video connection (its uid is not secret: an intruder probes it by name).
VIDEO_UID = "blue-cam"


# --- the routes the server serves -------------------------------------------------------------


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                yield prefix + route.path, method
        elif isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        else:  # a WebSocket route or something new: the sweep must learn about it
            yield prefix + getattr(route, "path", repr(route)), type(route).__name__


async def marti_routes(data_dir: Path, ca_template: Path) -> set[tuple[str, str]]:
    """Every (path template, method) under ``/Marti`` of the HTTP app a node serves (as ``Node.run`` builds it)."""
    shutil.copytree(ca_template, data_dir / "ca")
    node = build_node(Settings(data_dir=str(data_dir), federation_port=0))
    try:
        app = create_app(metrics=node.metrics, health=node.health,
                         extra_routes=[route for feature in node.features for route in feature.routes])
        return {(p, m) for p, m in _walk(app.routes) if p.startswith("/Marti")}
    finally:
        for feature in node.features:
            await feature.close()
        await node.store.close()
        await node.users.close()
        await node.audit.close()


# --- what Blue owns and what an intruder tries ------------------------------------------------


@dataclass(frozen=True)
class BlueItems:
    pack: str = "a" * 64  # mission package (missionupload)
    notes: str = "b" * 64  # plain file (upload)
    private: str = "c" * 64  # private file (upload, tool=private)
    guid: str = "00000000-0000-0000-0000-000000000000"
    token: str = "token"
    uids: tuple[str, ...] = ("uid-blue", "uid-blue2", "blue-marker", "blue-mission-marker")

    @property
    def hashes(self) -> tuple[str, str, str]:
        return self.pack, self.notes, self.private

    @property
    def ids(self) -> tuple[str, ...]:
        """What a listing must never show an intruder."""
        return (*self.hashes, self.guid, self.token, MISSION, *self.uids, *SECRETS)


@dataclass(frozen=True)
class Intruder:
    uid: str
    callsign: str
    group: str


Check = Callable[[httpx.Response], str | None]


def refused(*also: int) -> Check:
    allowed = {403, 404, *also}
    return lambda r: None if r.status_code in allowed else f"answered {r.status_code}, expected {sorted(allowed)}"


@dataclass(frozen=True)
class Probe:
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    check: Check = field(default=refused())
    json: Any = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def hidden(items: BlueItems) -> Check:
    def check(r: httpx.Response) -> str | None:
        if r.status_code != 200:
            return f"answered {r.status_code}, expected 200"
        shown = [i for i in items.ids if i in r.text]
        return f"shows {shown}" if shown else None
    return check


def groups_of_caller(items: BlueItems, group: str) -> Check:
    def check(r: httpx.Response) -> str | None:
        problem = hidden(items)(r)
        names = {g["name"] for g in r.json()["data"]} if problem is None else set()
        return problem or (f"lists groups {sorted(names)}" if names != {group} else None)
    return check


def zip_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("MANIFEST/manifest.xml", (
            '<MissionPackageManifest version="2"><Configuration>'
            f'<Parameter name="uid" value="{marker}"/><Parameter name="name" value="{marker}"/>'
            '</Configuration><Contents><Content zipEntry="a.txt"/></Contents></MissionPackageManifest>'))
        zf.writestr("a.txt", marker)
    return buf.getvalue()


def sweep_cases(b: BlueItems, me: Intruder) -> dict[tuple[str, str], list[Probe]]:
    """For each Marti route, what an intruder tries against Blue's items (HEAD follows GET)."""
    mine = {"creatorUid": me.uid}
    list_check, refuse = hidden(b), refused()
    name = f"{M}/{MISSION}"
    spoof = ({"uid": me.uid}, {"uid": b.uids[0]}, {"creatorUid": b.uids[0]})
    stolen = {"authorization": f"Bearer {b.token}"}
    return {
        ("/Marti/api/version", "GET"): [Probe("GET", "/Marti/api/version", check=list_check)],
        ("/Marti/api/version/config", "GET"): [Probe("GET", "/Marti/api/version/config", check=list_check)],
        ("/Marti/api/clientEndPoints", "GET"): [
            Probe("GET", "/Marti/api/clientEndPoints", p, list_check)
            for p in ({}, {"secAgo": "3600"}, {"group": "Blue"}, {"showCurrentlyConnectedClients": "true"})],
        ("/Marti/api/contacts/all", "GET"): [Probe("GET", "/Marti/api/contacts/all", check=list_check)],
        ("/Marti/api/groups/all", "GET"): [
            Probe("GET", "/Marti/api/groups/all", p, groups_of_caller(b, me.group))
            for p in ({}, {"clientUid": b.uids[0]})],
        ("/Marti/api/groups/user", "GET"): [
            Probe("GET", "/Marti/api/groups/user", p, groups_of_caller(b, me.group))
            for p in ({}, {"clientUid": b.uids[0]})],
        ("/Marti/api/groups/active", "PUT"): [
            Probe("PUT", "/Marti/api/groups/active", {"clientUid": uid}, refuse,
                  json=[{"name": "Blue", "direction": "OUT", "active": False},
                        {"name": "Blue", "direction": "IN", "active": False}])
            for uid in b.uids[:2]],
        ("/Marti/api/cot/xml/{uid}", "GET"): [Probe("GET", f"/Marti/api/cot/xml/{u}", check=refuse) for u in b.uids],
        ("/Marti/sync/missionquery", "GET"): [
            Probe("GET", "/Marti/sync/missionquery", {"hash": h}, refuse) for h in b.hashes],
        ("/Marti/sync/content", "GET"): [Probe("GET", "/Marti/sync/content", {"hash": h}, refuse) for h in b.hashes],
        ("/Marti/sync/search", "GET"): [
            Probe("GET", "/Marti/sync/search", p, list_check)
            for p in ({}, {"tool": "private"}, {"tool": "public"}, {"keywords": "missionpackage"},
                      {"keywords": "bluepkgkw"}, {"keyword": "bluepkgkw", "tool": "private"})],
        # Claiming Blue's hash for other bytes is refused (the content does not hash to it).
        ("/Marti/sync/missionupload", "POST"): [
            Probe("POST", "/Marti/sync/missionupload", {"hash": b.pack, "filename": "x.zip", **mine}, refused(400),
                  files={"assetfile": ("x.zip", zip_bytes(f"intruder-{me.uid}"))})],
        ("/Marti/sync/upload", "POST"): [
            Probe("POST", "/Marti/sync/upload", {"hash": b.notes, "name": "x.txt", **mine}, refused(400),
                  files={"assetfile": ("x.txt", f"intruder {me.uid}".encode())})],
        ("/Marti/api/sync/metadata/{hash}/tool", "PUT"): [
            Probe("PUT", f"/Marti/api/sync/metadata/{h}/tool", check=refuse, content=tool)
            for h in b.hashes for tool in (b"public", b"private")],
        (M, "GET"): [Probe("GET", M, check=list_check), Probe("GET", M, {"tool": "public"}, list_check)],
        (M + "/guid/{guid}", "GET"): [Probe("GET", f"{M}/guid/{b.guid}", {"changes": "true"}, refuse)],
        (M + "/guid/{guid}/changes", "GET"): [Probe("GET", f"{M}/guid/{b.guid}/changes", check=refuse)],
        (M + "/guid/{guid}/cot", "GET"): [Probe("GET", f"{M}/guid/{b.guid}/cot", check=refuse)],
        # The name is taken (409 says no more than that); no one creates a mission in Blue's group.
        **{(M + "/{name}", verb): [
            Probe(verb, name, mine, refused(409)),
            Probe(verb, f"{M}/Into-{me.uid}-{verb}", {**mine, "group": "Blue"}, refuse)] for verb in ("PUT", "POST")},
        (M + "/{name}", "GET"): [Probe("GET", name, p, refuse) for p in ({}, {"changes": "true", "logs": "true"})],
        (M + "/{name}", "DELETE"): [Probe("DELETE", name, p, refuse) for p in (mine, {"creatorUid": b.uids[0]})],
        **{(M + "/{name}/subscription", verb): [Probe(verb, f"{name}/subscription", p, refuse) for p in spoof]
           for verb in ("PUT", "POST")},
        (M + "/{name}/subscription", "GET"): [
            *(Probe("GET", f"{name}/subscription", p, refuse) for p in spoof),
            Probe("GET", f"{name}/subscription", check=refuse, headers=stolen)],
        (M + "/{name}/subscription", "DELETE"): [
            *(Probe("DELETE", f"{name}/subscription", p, refuse) for p in spoof),
            Probe("DELETE", f"{name}/subscription", check=refuse, headers=stolen)],
        (M + "/{name}/subscriptions", "GET"): [Probe("GET", f"{name}/subscriptions", check=refuse)],
        (M + "/{name}/subscriptions/roles", "GET"): [Probe("GET", f"{name}/subscriptions/roles", check=refuse)],
        (M + "/{name}/contents", "PUT"): [
            Probe("PUT", f"{name}/contents", mine, refuse, json={"hashes": [b.pack], "uids": [me.uid]}),
            Probe("PUT", f"{name}/contents", mine, refuse, json={"uids": [me.uid]})],
        (M + "/{name}/contents", "DELETE"): [
            Probe("DELETE", f"{name}/contents", {**mine, "hash": b.pack}, refuse),
            Probe("DELETE", f"{name}/contents", {**mine, "uid": "blue-marker"}, refuse)],
        (M + "/{name}/keywords", "PUT"): [Probe("PUT", f"{name}/keywords", mine, refuse, json=["hijacked"])],
        (M + "/{name}/keywords", "DELETE"): [Probe("DELETE", f"{name}/keywords", mine, refuse)],
        (M + "/{name}/keywords/{keyword}", "DELETE"): [Probe("DELETE", f"{name}/keywords/bluekw", mine, refuse)],
        (M + "/{name}/changes", "GET"): [
            Probe("GET", f"{name}/changes", p, refuse) for p in ({}, {"secago": "3600"})],
        (M + "/{name}/cot", "GET"): [Probe("GET", f"{name}/cot", check=refuse)],
        **{(M + "/{name}/invite/{kind}/{invitee}", verb): [
            Probe(verb, f"{name}/invite/{kind}/{who}", {**mine, "role": "MISSION_OWNER"}, refuse)
            for kind, who in (("clientUid", me.uid), ("callsign", me.callsign), ("group", me.group))]
           for verb in ("PUT", "POST")},
        (M + "/{name}/role", "PUT"): [
            Probe("PUT", f"{name}/role", {**mine, "clientUid": target, "role": role}, refuse)
            for target, role in ((me.uid, "MISSION_OWNER"), (b.uids[1], "MISSION_READONLY_SUBSCRIBER"))],
        # Video: Blue's connection is neither listed, read, replaced nor removed by another group.
        ("/Marti/vcm", "GET"): [Probe("GET", "/Marti/vcm", check=list_check)],
        ("/Marti/vcm", "POST"): [Probe("POST", "/Marti/vcm", check=refuse, content=(
            f"<videoConnections><feed><uid>{VIDEO_UID}</uid><alias>x</alias><url>rtsp://10.6.6.6/x</url>"
            "</feed></videoConnections>").encode())],
        ("/Marti/api/video", "GET"): [Probe("GET", "/Marti/api/video", check=list_check)],
        ("/Marti/api/video", "POST"): [Probe("POST", "/Marti/api/video", check=refuse, json={"videoConnections": [
            {"uuid": VIDEO_UID, "alias": "x", "feeds": [{"url": "rtsp://10.6.6.6/x"}]}]})],
        ("/Marti/api/video/{uid}", "GET"): [Probe("GET", f"/Marti/api/video/{VIDEO_UID}", check=refuse)],
        ("/Marti/api/video/{uid}", "PUT"): [Probe("PUT", f"/Marti/api/video/{VIDEO_UID}", check=refuse,
                                                  json={"alias": "x", "feeds": [{"url": "rtsp://10.6.6.6/x"}]})],
        ("/Marti/api/video/{uid}", "DELETE"): [Probe("DELETE", f"/Marti/api/video/{VIDEO_UID}", check=refuse)],
    }


def test_every_marti_route_has_a_sweep_case(tmp_path: Path, ca_template: Path) -> None:
    routes = asyncio.run(marti_routes(tmp_path / "routes", ca_template))
    cases = sweep_cases(BlueItems(), Intruder("u", "U", "Red"))
    served = {(p, m) for p, m in routes if m != "HEAD"}
    assert served - cases.keys() == set(), "Marti routes without an access sweep case"
    assert cases.keys() - served == set(), "sweep cases for routes the server no longer has"
    # HEAD is answered by the GET handler; the sweep sends it with each GET probe.
    assert {p for p, m in routes if m == "HEAD"} <= {p for p, m in served if m == "GET"}
    assert all(len(probes) > 0 for probes in cases.values())


# --- the live server --------------------------------------------------------------------------


class User:
    """One person: an HTTPS client and a TLS CoT stream sharing a certificate."""

    def __init__(self, name: str, http: httpx.AsyncClient, stream: CotClient) -> None:
        self.name = name
        self.uid = f"uid-{name}"
        self.http = http
        self.stream = stream


CALLSIGNS = {"red": "REDONE", "red2": "REDTWO", "blue": "BLUEFOX", "blue2": "BLUETWO"}


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    groups = {"red": ["Red"], "red2": ["Red"], "blue": ["Blue"], "blue2": ["Blue"]}
    with serve_with_groups(data_dir, groups) as proc:
        yield proc


@pytest.fixture
async def users(group_server: ServerProcess, tmp_path: Path) -> AsyncIterator[dict[str, User]]:
    made: dict[str, User] = {}
    base = f"https://127.0.0.1:{group_server.ports['api']}"
    try:
        for name, callsign in CALLSIGNS.items():
            ctx = client_context(group_server, name, tmp_path)
            stream = await CotClient.connect(group_server.ports["tls"], ssl_context=ctx)
            made[name] = User(name, httpx.AsyncClient(base_url=base, verify=ctx, timeout=10), stream)
            await stream.send(sa(f"uid-{name}", callsign))
        # Each SA reached a peer of its group: every uid is bound to its certificate.
        for a, b in (("red", "red2"), ("red2", "red"), ("blue", "blue2"), ("blue2", "blue")):
            await made[a].stream.wait_uid(f"uid-{b}")
        yield made
    finally:
        for user in made.values():
            await user.http.aclose()
            await user.stream.close()


async def _ok(resp: Awaitable[httpx.Response], status: int = 200) -> httpx.Response:
    got = await resp
    assert got.status_code == status, got.text
    return got


async def _mission_uids(blue: User) -> list[str]:
    doc = (await _ok(blue.http.get(f"{M}/{MISSION}"))).json()
    return [u["data"] for u in doc["data"][0]["uids"]]


async def blue_creates_items(blue: User, blue2: User, red: User, red2: User) -> BlueItems:
    """Blue's packages, mission, subscriptions and CoT; Red's attempt to write CoT into the mission."""
    await blue.stream.send(cot("blue-marker", "b-m-p-s-m", detail='<contact callsign="BLUEMARK"/>'))
    await blue2.stream.wait_uid("blue-marker")
    pack_data = zip_bytes("blue-pack-uid")
    r = await _ok(blue.http.post("/Marti/sync/missionupload",
                                 params={"filename": "blue-pack.zip", "creatorUid": blue.uid},
                                 files={"assetfile": ("blue-pack.zip", pack_data)}))
    assert r.text.endswith(hashlib.sha256(pack_data).hexdigest())
    notes = (await _ok(blue.http.post(
        "/Marti/sync/upload", params={"name": "blue-notes.txt", "keywords": "bluepkgkw", "creatorUid": blue.uid},
        files={"assetfile": ("blue-notes.txt", b"blue notes")}))).json()
    private = (await _ok(blue.http.post("/Marti/sync/upload",
                                        params={"name": "blue-private.txt", "tool": "private", "keywords": "bluepkgkw"},
                                        files={"assetfile": ("blue-private.txt", b"blue private")}))).json()
    created = await _ok(blue.http.put(f"{M}/{MISSION}", params={
        "creatorUid": blue.uid, "description": "bluesecretdesc", "keywords": "bluekw"}), 201)
    mission = created.json()["data"][0]
    assert mission["groups"] == ["Blue"]
    items = BlueItems(pack=hashlib.sha256(pack_data).hexdigest(), notes=notes["Hash"], private=private["Hash"],
                      guid=mission["guid"], token=mission["token"])
    await _ok(blue.http.put(f"{M}/{MISSION}/contents", params={"creatorUid": blue.uid},
                            json={"hashes": [items.pack, items.notes], "uids": ["blue-marker"]}))
    await _ok(blue.http.put(f"{M}/{MISSION}/keywords", params={"creatorUid": blue.uid}, json=["bluekw", "bluekw2"]))
    await _ok(blue2.http.put(f"{M}/{MISSION}/subscription", params={"uid": blue2.uid}), 201)
    await _ok(blue.http.put(f"{M}/{MISSION}/invite/callsign/BLUETWO", params={"creatorUid": blue.uid}))
    await blue.stream.send(cot("blue-mission-marker", "b-m-p-s-m", detail=(
        f'<contact callsign="BLUEMM"/><marti><dest mission="{MISSION}"/></marti>')))
    await blue2.stream.wait_uid("blue-mission-marker")
    await _ok(blue.http.post("/Marti/api/video", json={"videoConnections": [
        {"uuid": VIDEO_UID, "alias": "BLUECAM", "feeds": [{"url": "rtsp://cam:pw@bluecam.example:8554/live"}]}]}))

    # Red addresses CoT to Blue's mission; red2's later marker proves the server took it in.
    await red.stream.send(cot("red-into-blue", "a-h-G", detail=f'<marti><dest mission="{MISSION}"/></marti>'))
    await red2.stream.barrier(red.stream)
    # Mission CoT is written in arrival order: once Blue's later one is in, Red's would be too.
    await blue.stream.send(cot("blue-late", "a-h-G", detail=f'<marti><dest mission="{MISSION}"/></marti>'))
    deadline = time.monotonic() + 10
    while "blue-late" not in (uids := await _mission_uids(blue)):
        assert time.monotonic() < deadline, f"blue-late not recorded: {uids}"
        await blue2.stream.barrier(blue.stream)
    assert "red-into-blue" not in uids and "blue-mission-marker" in uids
    assert not blue2.stream.has(lambda e: e.uid == "red-into-blue")
    return items


async def blue_view(blue: User, items: BlueItems) -> dict[str, Any]:
    """Everything Blue can read about its own items (compared before and after the sweep)."""
    async def get(path: str, **params: str) -> Any:
        return (await _ok(blue.http.get(path, params=params))).json()

    return {
        "missions": await get(M),
        "mission": await get(f"{M}/{MISSION}", changes="true"),
        "changes": await get(f"{M}/{MISSION}/changes"),
        "cot": (await _ok(blue.http.get(f"{M}/{MISSION}/cot"))).text,
        "roles": await get(f"{M}/{MISSION}/subscriptions/roles"),
        "own": await get(f"{M}/{MISSION}/subscription", uid=blue.uid),
        "search": await get("/Marti/sync/search"),
        "private": await get("/Marti/sync/search", tool="private"),
        "groups": await get("/Marti/api/groups/all", clientUid=blue.uid),
        "contents": [hashlib.sha256((await _ok(blue.http.get("/Marti/sync/content", params={"hash": h}))).content)
                     .hexdigest() for h in items.hashes],
        "marker": (await _ok(blue.http.get("/Marti/api/cot/xml/blue-marker"))).text,
        "video": (await _ok(blue.http.get("/Marti/vcm"))).text,
    }


async def sweep(http: httpx.AsyncClient, routes: set[tuple[str, str]], cases: dict[tuple[str, str], list[Probe]],
                who: str) -> list[str]:
    """Send every probe (and HEAD after each GET where the route has HEAD); the problems found."""
    problems: list[str] = []
    for key in sorted(routes):
        path, method = key
        if method == "HEAD":
            continue
        for probe in cases[key]:
            r = await http.request(probe.method, probe.url, params=probe.params, json=probe.json,
                                   content=probe.content, files=probe.files, headers=probe.headers)
            seen = r.text + str(r.headers)
            issue = probe.check(r) or next((f"reveals {s!r}" for s in SECRETS if s in seen), None)
            if issue:
                problems.append(f"{who} {probe.method} {probe.url} {probe.params}: {issue}: {r.text[:200]!r}")
            if method == "GET" and (path, "HEAD") in routes:
                h = await http.head(probe.url, params=probe.params, headers=probe.headers)
                if h.status_code != r.status_code or h.content:
                    problems.append(f"{who} HEAD {probe.url} {probe.params}: {h.status_code} after GET {r.status_code}")
    return problems


async def test_other_groups_reach_none_of_blues_items_on_any_marti_route(
    group_server: ServerProcess, users: dict[str, User], tmp_path: Path, ca_template: Path
) -> None:
    red, red2, blue, blue2 = users["red"], users["red2"], users["blue"], users["blue2"]
    routes = await marti_routes(tmp_path / "routes", ca_template)
    items = await blue_creates_items(blue, blue2, red, red2)
    before = await blue_view(blue, items)
    # The comparison below means something: Blue sees everything it made.
    mission = before["mission"]["data"][0]
    assert {c["data"]["hash"] for c in mission["contents"]} == {items.pack, items.notes}
    assert {"blue-marker", "blue-mission-marker"} <= {u["data"] for u in mission["uids"]}
    assert mission["keywords"] == ["bluekw", "bluekw2"] and len(before["roles"]["data"]) == 2
    assert [r["Hash"] for r in before["private"]["results"]] == [items.private]
    assert "BLUECAM" in before["video"] and "pw@bluecam.example" in before["video"]
    await blue.stream.barrier(blue2.stream)
    notices_before = sum(1 for e in blue.stream.events if e.type.startswith("t-x-m"))

    problems = await sweep(red.http, routes, sweep_cases(items, Intruder(red.uid, "REDONE", "Red")), "red")
    plain = f"http://127.0.0.1:{group_server.ports['http']}"
    async with httpx.AsyncClient(base_url=plain, timeout=10) as anon:
        problems += await sweep(anon, routes, sweep_cases(items, Intruder("uid-anon", "ANON", "__ANON__")), "anon")
    assert not problems, "\n".join(problems)

    # Nothing Blue owns changed, and no mission notice went out.
    assert await blue_view(blue, items) == before
    await blue.stream.barrier(blue2.stream)
    assert sum(1 for e in blue.stream.events if e.type.startswith("t-x-m")) == notices_before
    # Red's stream heard nothing of Blue: no SA, marker or mission CoT, no mission notices.
    await red.stream.barrier(red2.stream)
    assert not red.stream.has(lambda e: e.uid in items.uids or e.type.startswith("t-x-m"))
    assert not red.stream.has(lambda e: any(s.encode() in e.detail.xml for s in SECRETS))


async def test_private_packages_are_listed_to_their_submitter_only(group_server: ServerProcess, tmp_path: Path) -> None:
    api = f"https://127.0.0.1:{group_server.ports['api']}"
    http = {n: httpx.AsyncClient(base_url=api, verify=client_context(group_server, n, tmp_path), timeout=10)
            for n in ("blue", "blue2", "red")}
    try:
        sent = (await _ok(http["blue"].post("/Marti/sync/upload", params={"name": "to-contacts.txt", "tool": "private"},
                                            files={"assetfile": ("to-contacts.txt", b"for blue2 only")}))).json()
        pack = zip_bytes("sent-pack")
        await _ok(http["blue"].post("/Marti/sync/missionupload", params={"filename": "sent.zip"},
                                    files={"assetfile": ("sent.zip", pack)}))
        marked = hashlib.sha256(pack).hexdigest()
        # ATAK's send to contacts: upload, then mark it private.
        await _ok(http["blue"].put(f"/Marti/api/sync/metadata/{marked}/tool", content=b"private"))
        private = {sent["Hash"], marked}
        for params in ({}, {"tool": "private"}, {"keywords": "missionpackage"}, {"keywords": "missionpackage",
                                                                                  "tool": "private"}):
            for name in ("blue2", "red"):
                found = (await _ok(http[name].get("/Marti/sync/search", params=params))).json()
                assert found == {"resultCount": 0, "results": []}, (name, params)
            own = (await _ok(http["blue"].get("/Marti/sync/search", params=params))).json()["results"]
            assert {r["Hash"] for r in own} == private & ({marked} if "keywords" in params else private), params
        # The contacts it was sent to still download it by its hash; other groups cannot.
        assert (await _ok(http["blue2"].get("/Marti/sync/content", params={"hash": marked}))).content == pack
        assert (await http["red"].get("/Marti/sync/content", params={"hash": marked})).status_code == 404
        # Holding the same bytes makes Red an uploader of its own, with no say over Blue's upload.
        await _ok(http["red"].post("/Marti/sync/upload", params={"name": "copy.txt"},
                                   files={"assetfile": ("copy.txt", b"for blue2 only")}))
        flip = await http["blue2"].put(f"/Marti/api/sync/metadata/{sent['Hash']}/tool", content=b"public")
        assert flip.status_code == 403, flip.text
        await _ok(http["red"].put(f"/Marti/api/sync/metadata/{sent['Hash']}/tool", content=b"private"))
        assert (await _ok(http["blue2"].get("/Marti/sync/search"))).json()["resultCount"] == 0
        assert [r["Name"] for r in (await _ok(http["red"].get("/Marti/sync/search"))).json()["results"]] == [
            "copy.txt"]
    finally:
        for client in http.values():
            await client.aclose()

