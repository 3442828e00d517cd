"""``POST /api/airdrop/plan`` on the real server: the same plan as the CLI, clear refusals, counted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx

from tests.support.accounts import PASSWORDS
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "airdrop_relief.toml"
PATH = "/api/airdrop/plan"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_the_api_answers_the_same_plan_as_the_cli(api_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post(PATH, json=example()).status_code == 401
        token = http.post("/api/auth/token", auth=("alice", PASSWORDS["alice"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        answer = http.post(PATH, json=example(), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    by_cli = subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "airdrop", "plan", str(EXAMPLE), "--json"],
                            capture_output=True, text=True, check=True)
    assert answer.json() == json.loads(by_cli.stdout)
    assert metric_value(api_server, "rallypoint_airdrop_plans_total") == 1.0


def test_hostile_requests_get_a_clear_refusal_and_are_counted(api_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    lat, lon = example()["drop_zone"]["pi"]
    d = 0.003
    cases: list[tuple[str, Any, str]] = []
    negative = example()
    negative["aircraft"]["altitude_agl_m"] = -244
    cases.append(("negative altitude", negative, "aircraft.altitude_agl_m"))
    samples = example()
    samples["dispersion"]["samples"] = 10**9
    cases.append(("10^9 samples", samples, "dispersion.samples"))
    crossing = example()
    bow_tie = [[lat - d, lon - d], [lat + d, lon + d], [lat - d, lon + d], [lat + d, lon - d]]
    crossing["drop_zone"] = {"pi": [lat, lon], "elevation_m": 420, "polygon": bow_tie}
    cases.append(("self-crossing polygon", crossing, "crosses itself"))
    upside = example()
    upside["winds"][0]["top_m"] = 0
    cases.append(("upside-down layer", upside, "top not above its bottom"))
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post("/api/auth/token", auth=("alice", PASSWORDS["alice"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for name, body, words in cases:
            answer = http.post(PATH, json=body, headers=headers)
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["error"] == "invalid_plan" and words in answer.json()["detail"], name
        nan_text = json.dumps(example()).replace('"speed_kt": 8', '"speed_kt": NaN')
        answer = http.post(PATH, content=nan_text, headers={**headers, "content-type": "application/json"})
        assert answer.status_code == 400 and "not valid JSON" in answer.json()["detail"]
        many = example()
        many["drop_zone"] = {"pi": [lat, lon], "polygon": [[lat + i * 1e-7, lon + math.sin(i)] for i in range(100_000)]}
        answer = http.post(PATH, json=many, headers=headers)
        assert answer.status_code == 413, answer.text
        answer = http.post(PATH, content=b"<xml/>", headers={**headers, "content-type": "application/xml"})
        assert answer.status_code == 415
    assert metric_value(api_server, "rallypoint_airdrop_plans_refused_total") == 5.0
    assert not [line for line in api_server.lines if line.get("level") in ("error", "critical")]
