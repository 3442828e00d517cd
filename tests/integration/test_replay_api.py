"""``/api/replay`` on a real server: a window in time order, the group rule, exports, hostile parameters."""

from __future__ import annotations

import csv
import io
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastkml import kml

from tests.support.accounts import PASSWORDS
from tests.support.certs import client_bundle
from tests.support.cot_client import CotClient, sa
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.server import ServerProcess


def tls_context(server: ServerProcess, name: str, tmp: Path) -> ssl.SSLContext:
    bundle = client_bundle(server, name, tmp)
    context = ssl.create_default_context(cafile=str(bundle.ca))
    context.load_cert_chain(bundle.cert, bundle.key)
    return context


async def login(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    answer = await http.post("/api/auth/token", auth=(name, PASSWORDS[name]))
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_a_window_shows_only_the_callers_groups_in_time_order(
    api_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    started = int(time.time() * 1000) - 1000
    tls = api_server.ports["tls"]
    alice_dev = await CotClient.connect(tls, ssl_context=tls_context(api_server, "alice", tmp_path))
    bob_dev = await CotClient.connect(tls, ssl_context=tls_context(api_server, "bob", tmp_path))
    clients.extend([alice_dev, bob_dev])
    for step in range(4):
        await alice_dev.send(sa("uid-alice", "ALICE", lat=39.1 + step / 100, lon=-120.0))
        await bob_dev.send(sa("uid-bob", "BOB", lat=40.0, lon=-121.0 + step / 100))

    base = f"http://127.0.0.1:{api_server.ports['http']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        alice, bob = await login(http, "alice"), await login(http, "bob")
        window = {"since": str(started), "until": str(int(time.time() * 1000) + 60_000)}

        async def page(headers: dict[str, str], **extra: str) -> dict[str, Any]:
            answer = await http.get("/api/replay", params={**window, **extra}, headers=headers)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        def count(headers: dict[str, str]) -> int:
            # wait_until polls a plain function: read synchronously from the poll.
            answer = httpx.get(f"{base}/api/replay", params=window, headers=headers, timeout=10)
            return len(answer.json()["events"])

        await wait_until(lambda: count(alice) >= 4, "alice's four reports stored")
        await wait_until(lambda: count(bob) >= 4, "bob's four reports stored")
        seen = (await page(alice))["events"]
        assert {e["uid"] for e in seen} == {"uid-alice"}
        lats = [e["position"]["lat"] for e in seen]
        assert [round(lat, 4) for lat in lats] == [39.1, 39.11, 39.12, 39.13]
        assert {e["uid"] for e in (await page(bob))["events"]} == {"uid-bob"}

        # Pages chain without loss or repeats.
        first = await page(alice, limit="3")
        assert first["truncated"] is True and first["next"]
        rest = await page(alice, limit="3", cursor=str(first["next"]))
        assert len(first["events"]) + len(rest["events"]) == 4

        # An area holding only bob's track shows alice nothing.
        assert (await page(alice, bbox="-121.5,39.5,-120.5,40.5"))["events"] == []

        # Exports follow the same rule.
        exported = (await http.get("/api/replay/export", params={**window, "format": "csv"}, headers=bob))
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["uid"] for r in rows} == {"uid-bob"} and all(r["sender"] == "" for r in rows)
        geo = (await http.get("/api/replay/export", params={**window, "format": "geojson"}, headers=alice)).json()
        assert {f["properties"]["uid"] for f in geo["features"]} == {"uid-alice"}
        placemarks = (await http.get("/api/replay/export", params={**window, "format": "kml"}, headers=alice)).content
        doc = kml.KML.from_string(placemarks.split(b"?>", 1)[1].decode())
        assert {mark.name for mark in doc.features[0].features} == {"ALICE"}

        # The player page and its files are served; nothing else is.
        assert (await http.get("/replay")).status_code == 200
        assert (await http.get("/replay/replay.js")).headers["content-type"].startswith("text/javascript")
        assert (await http.get("/replay/..%2Fmap.js")).status_code == 404


@pytest.mark.parametrize(("params", "words"), [
    ({}, "needs both since and until"),
    ({"since": "2024-01-01T00:00:00Z"}, "needs both since and until"),
    ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "later than since"),
    ({"since": "2024-01-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "later than since"),
    ({"since": "0", "until": "9999999999999"}, "longer than"),
    ({"since": "tomorrow", "until": "1"}, "ISO 8601"),
    ({"since": "2024-01-01T00:00:00", "until": "2024-01-02T00:00:00Z"}, "needs a zone"),
    ({"since": "1", "until": "2", "limit": "5001"}, "limit"),
    ({"since": "1", "until": "2", "bbox": "1,2,3"}, "bbox"),
    ({"since": "1", "until": "2", "cursor": "'; drop"}, "cursor"),
    ({"since": "1", "until": "2", "sinse": "1"}, "unknown query parameter"),
])
def test_hostile_windows_are_400_with_words(server: ServerProcess, params: dict[str, str], words: str) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        refused = 0
        for path, extra in (("/api/replay", {}), ("/api/replay/export", {"format": "csv"})):
            if ("limit" in params or "cursor" in params) and path.endswith("export"):
                continue
            answer = http.get(path, params={**params, **extra})
            assert answer.status_code == 400, (path, answer.text)
            assert words in answer.json()["detail"], (path, answer.text)
            refused += 1
        bad_format = http.get("/api/replay/export", params={"since": "1", "until": "2", "format": "pdf"})
        assert bad_format.status_code == 400 and "kml, geojson or csv" in bad_format.json()["detail"]
        # Counted and logged; the server still answers after all of it.
        assert metric_value(server, "rallypoint_replay_refused_total") == refused + 1
        server.wait_for_log("replay request refused", path="/api/replay/export")
        assert http.get("/api/health").status_code == 200
