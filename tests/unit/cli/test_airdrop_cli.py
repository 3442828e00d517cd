"""``rallypoint airdrop plan FILE.toml [--json] [--svg OUT.svg]`` through the real command line app."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lxml import etree
from typer.testing import CliRunner

from rallypoint.cli.main import app

runner = CliRunner()
EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "airdrop_relief.toml"


def test_json_output_has_the_documented_fields() -> None:
    result = runner.invoke(app, ["airdrop", "plan", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan["carp"]) == {"lat", "lon"}
    assert plan["run_in_deg"] == 250.0 and plan["run_in_source"] == "chosen"
    assert 15 < plan["time_of_fall_s"] < 30
    assert plan["forward_travel_m"] > 0
    assert set(plan["drift_m"]) == {"east", "north"}
    assert {"cep_m", "r95_m", "p_inside_dz"} <= set(plan["dispersion"])
    assert plan["dispersion"]["samples"] == 10000
    assert plan["warnings"] == []
    assert plan["assumptions"] and plan["advisory"].startswith("Advisory only")


def test_human_output_by_default_and_svg_written(tmp_path: Path) -> None:
    out = tmp_path / "plan.svg"
    result = runner.invoke(app, ["airdrop", "plan", str(EXAMPLE), "--svg", str(out)])
    assert result.exit_code == 0, result.output
    assert "CARP" in result.stdout and "Green light" in result.stdout and "Assumptions" in result.stdout
    root = etree.fromstring(out.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}polygon") is not None
    assert root.find("{http://www.w3.org/2000/svg}ellipse") is not None


def test_invalid_files_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    cases = {
        "missing.toml": None,
        "broken.toml": "[drop_zone\npi = 1",
        "negative.toml": EXAMPLE.read_text().replace("altitude_agl_m = 244", "altitude_agl_m = -244"),
        "nan.toml": EXAMPLE.read_text().replace("speed_kt = 8", "speed_kt = nan"),
        "samples.toml": EXAMPLE.read_text().replace("samples = 10000", "samples = 1_000_000_000"),
        "vertices.toml": EXAMPLE.read_text().replace(
            "length_m = 700", "polygon = [" + ", ".join(f"[9.5, {31 + i * 1e-6:.6f}]" for i in range(100_000)) + "]"),
    }
    expected = {"missing.toml": "No such file", "broken.toml": "not valid TOML",
                "negative.toml": "aircraft.altitude_agl_m", "nan.toml": "winds[0].speed_kt",
                "samples.toml": "dispersion.samples", "vertices.toml": "drop_zone.polygon"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        result = runner.invoke(app, ["airdrop", "plan", str(path), "--json"])
        assert result.exit_code == 2, (name, result.output)
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and expected[name] in result.stderr, (name, result.stderr)


def test_the_worked_example_in_the_docs_is_what_the_command_prints() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "airdrop.md").read_text()
    shown = json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0])
    result = runner.invoke(app, ["airdrop", "plan", str(EXAMPLE), "--json"])
    printed = json.loads(result.stdout)
    printed["dispersion"]["impacts"] = printed["dispersion"]["impacts"][:2]
    assert _same_within_rounding(printed, shown), (printed, shown)


def _same_within_rounding(a: object, b: object) -> bool:
    """Equal structure and text; numbers equal to 1e-9 relative (the last printed digit varies with the
    floating-point libraries underneath, not with the method)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_within_rounding(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_within_rounding(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b
