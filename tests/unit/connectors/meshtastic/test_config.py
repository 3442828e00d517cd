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


def test_the_three_url_forms_as_written_in_the_docs() -> None:
    import base64

    from rallypoint.connectors.meshtastic.crypto import DEFAULT_KEY
    from rallypoint.connectors.meshtastic.spec import MeshLinkKind, mesh_spec

    tcp = mesh_spec(MeshtasticConfig(url="meshtastic+tcp://10.0.0.20:4403"))
    assert (tcp.kind, tcp.host, tcp.port, tcp.name) == (MeshLinkKind.TCP, "10.0.0.20", 4403, "mesh-10.0.0.20")
    serial = mesh_spec(MeshtasticConfig(url="meshtastic+serial:///dev/ttyUSB0"))
    assert (serial.kind, serial.device, serial.baud) == (MeshLinkKind.SERIAL, "/dev/ttyUSB0", 115200)
    # A channel key as the apps show it, '+' included (even leading): pasted into the query unescaped, it reads.
    mqtt = mesh_spec(MeshtasticConfig(url="meshtastic+mqtt://broker:1883/msh/EU_868/2/e/LongFast?key=1PG7OiApB1nwvP+rz05pAQ=="))
    assert (mqtt.kind, mqtt.host, mqtt.port) == (MeshLinkKind.MQTT, "broker", 1883)
    assert mqtt.topic == "msh/EU_868/2/e/LongFast"
    assert (mqtt.channel_name, mqtt.key) == ("LongFast", DEFAULT_KEY)
    aes256 = bytes([0xFB, 0xFF]) * 16
    text = base64.b64encode(aes256).decode()
    assert "+" in text and "/" in text
    assert mesh_spec(MeshtasticConfig(url=f"meshtastic+mqtt://b:1883/msh/US/2/e/Ops?key={text}")).key == aes256
