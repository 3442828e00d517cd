"""Meshtastic settings: ``--feed meshtastic+...`` and ``[[meshtastic]]`` are meshes, not feeds; bad ones stop serve."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rallypoint.cli.main import app
from rallypoint.config import MeshtasticConfig, load_settings, with_feed_urls


def test_feed_flags_split_into_feeds_and_meshes(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[meshtastic]]\nurl = "meshtastic+serial:///dev/ttyUSB0"\nsend = ["chat"]\n')
    settings = with_feed_urls(load_settings(config, environ={}),
                              ["meshtastic+tcp://10.0.0.20:4403", "sbs+tcp://127.0.0.1:30003"])
    assert [f.url for f in settings.feeds] == ["sbs+tcp://127.0.0.1:30003"]
    assert settings.meshtastic == (
        MeshtasticConfig(url="meshtastic+serial:///dev/ttyUSB0", send=("chat",)),
        MeshtasticConfig(url="meshtastic+tcp://10.0.0.20:4403"),
    )
    env = load_settings(environ={"RALLYPOINT_MESHTASTIC": '[{"url": "meshtastic+tcp://h", "groups": ["Field"]}]'})
    assert env.meshtastic[0].groups == ("Field",)


def test_serve_refuses_a_bad_mesh_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--feed",
                                      "meshtastic+mqtt://broker/msh/EU_868/2/e/LongFast?key=not-a-key!"])
    assert result.exit_code == 2
    assert "configuration error: meshtastic URL" in result.output and "not base64" in result.output
    assert not (tmp_path / "ca").exists()  # refused before the node was built
