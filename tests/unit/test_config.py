"""Settings precedence and validation: defaults < TOML < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.config import Settings, load_settings
from rallypoint.errors import ConfigError


def test_defaults_match_the_documented_ports() -> None:
    s = load_settings(environ={})
    ports = (s.cot_port, s.tls_port, s.api_port, s.http_port, s.enroll_port, s.udp_port)
    assert ports == (0, 8089, 8443, 8080, 8446, 6969)
    assert s.udp_enabled is False, "the UDP mesh input is off unless enabled"
    assert s.plain_bind == "127.0.0.1"
    assert s.storage_url.startswith("sqlite:///") and s.storage_url.endswith("events.db")


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "rp.toml"
    cfg.write_text('[rallypoint]\ncot_port = 1111\ntls_port = 2222\nlog_format = "text"\n'
                   '[rallypoint.client_groups]\nalice = ["Red", "Blue"]\n')
    s = load_settings(cfg, environ={"RALLYPOINT_TLS_PORT": "3333", "RALLYPOINT_DEMO": "yes"},
                      overrides={"cot_port": None, "http_port": 4444})
    assert s.cot_port == 1111  # file (flag not given)
    assert s.tls_port == 3333  # env beats file
    assert s.http_port == 4444  # flag
    assert s.demo is True
    assert s.client_groups == {"alice": ("Red", "Blue")}
    assert s.log_format == "text"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RALLYPOINT_TLS_PORT": "eighty"}, "expected an integer"),
        ({"RALLYPOINT_TLS_PORT": "70000"}, "not a port number"),
        ({"RALLYPOINT_DEMO": "maybe"}, "expected a boolean"),
        ({"RALLYPOINT_LOG_FORMAT": "xml"}, "log_format"),
        ({"RALLYPOINT_CLIENT_GROUPS": "{nope"}, "JSON object"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "rp.toml"
    cfg.write_text("[rallypoint]\ncot_prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'cot_prot'"):
        load_settings(cfg, environ={})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.cot_port = 5  # type: ignore[misc]


def test_federation_peer_compression_is_validated() -> None:
    peers = '[{"name": "b", "host": "h", "compression": "brotli"}]'
    with pytest.raises(ConfigError, match="compression"):
        load_settings(environ={"RALLYPOINT_FEDERATION_PEERS": peers})
    ok = load_settings(environ={"RALLYPOINT_FEDERATION_PEERS": peers.replace("brotli", "gzip")})
    assert ok.federation_peers[0].compression == "gzip"


def test_udp_multicast_groups_are_validated() -> None:
    s = load_settings(environ={"RALLYPOINT_UDP_MULTICAST": "239.2.3.1, 224.10.10.1"})
    assert s.udp_multicast == ("239.2.3.1", "224.10.10.1")
    with pytest.raises(ConfigError, match="multicast"):
        load_settings(environ={"RALLYPOINT_UDP_MULTICAST": "10.0.0.1"})
