"""``rallypoint plan ...`` against a real server: show, export, import, versions, diff, revert, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from rallypoint.cli.main import app
from tests.integration.test_plans import FIRST
from tests.support.server import ServerProcess

runner = CliRunner()


def test_plan_commands_against_a_running_server(server: ServerProcess, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.ports['http']}"
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/api/missions", json={"name": "Op"}).status_code == 201
        assert http.put("/api/missions/Op/plan", json={"plan": FIRST, "reason": "first draft"}).status_code == 200

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["plan", "--server", base, *args])
        return result.exit_code, result.output

    code, out = cli("show", "Op")
    assert code == 0, out
    assert "Op plan v1 by rallypoint-api-anonymous" in out and "first draft" in out and "sector-a" in out

    kml = tmp_path / "op.kml"
    code, out = cli("export", "Op", "--format", "kml", "--out", str(kml))
    assert code == 0, out
    assert kml.read_bytes().startswith(b"<?xml") and b"Sector A" in kml.read_bytes()
    package = tmp_path / "op.zip"
    assert cli("export", "Op", "--out", str(package))[0] == 0
    assert package.read_bytes()[:2] == b"PK"

    code, out = cli("import", "Op", str(kml), "--reason", "from the KML")
    assert code == 0, out
    assert "v2" in out and "from the KML" in out

    code, out = cli("versions", "Op")
    assert code == 0 and out.splitlines()[0].startswith("v1\trallypoint-api-anonymous")
    assert out.splitlines()[1].endswith("from the KML")

    # KML keeps neither the area's colour nor the waypoint names.
    code, out = cli("diff", "Op", "1", "2")
    assert code == 0, out
    assert "~ area sector-a (color)" in out and "~ route ingress (waypoints)" in out
    code, out = cli("diff", "Op", "1", "2", "--json")
    assert json.loads(out)["to_version"] == 2

    code, out = cli("revert", "Op", "1", "--reason", "KML lost the colours")
    assert code == 0 and "v3" in out and "reverted to v1" in out
    assert cli("diff", "Op", "1", "3")[1].strip() == "no difference"

    code, out = cli("import", "Op", str(package), "--replace", "--reason", "package")
    assert code == 0 and "v4" in out


def test_plan_command_errors_are_clear(server: ServerProcess, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.ports['http']}"
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/api/missions", json={"name": "Op"}).status_code == 201
    bow_tie = {"type": "Feature", "properties": {"name": "Bad"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(bow_tie))

    result = runner.invoke(app, ["plan", "--server", base, "import", "Op", str(bad)])
    assert result.exit_code == 1 and "400 invalid_plan" in result.output and "crosses itself" in result.output
    result = runner.invoke(app, ["plan", "--server", base, "import", "Op", str(tmp_path / "missing.kml")])
    assert result.exit_code == 1 and "cannot read" in result.output
    result = runner.invoke(app, ["plan", "--server", base, "import", "Op", str(bad), "--format", "pdf"])
    assert result.exit_code == 2 and "datapackage" in result.output
    result = runner.invoke(app, ["plan", "--server", base, "show", "Nope"])
    assert result.exit_code == 1 and "404" in result.output
    result = runner.invoke(app, ["plan", "--server", base, "revert", "Op", "7", "--reason", "x"])
    assert result.exit_code == 1 and "no version 7" in result.output
