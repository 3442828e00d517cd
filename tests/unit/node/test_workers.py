"""What each worker of ``serve --workers N`` is told: shared ports, its own node id, one demo, one multicast member."""

from __future__ import annotations

import io
import socket

import pytest

from rallypoint.config import Settings, load_settings
from rallypoint.errors import ConfigError
from rallypoint.node.workers import (
    WorkerSpec,
    encode_spec,
    planned_listeners,
    read_spec,
    refuse_unsafe,
    reserve,
    worker_settings,
)


def _settings(**values: object) -> Settings:
    return load_settings(environ={}, overrides={"workers": 2, **values})


def test_listeners_follow_the_node_conditions() -> None:
    s = _settings(cot_port=8087, udp_enabled=True, udp_bind="0.0.0.0", enroll_port=0)
    assert [(x.name, x.host, x.port, x.udp) for x in planned_listeners(s)] == [
        ("tls", "0.0.0.0", 8089, False), ("cot", "127.0.0.1", 8087, False), ("udp", "0.0.0.0", 6969, True),
        ("http", "127.0.0.1", 8080, False), ("api", "0.0.0.0", 8443, False),
    ]


def test_each_worker_gets_the_shared_ports_and_its_own_stable_node_id() -> None:
    s = _settings(demo=True, udp_enabled=True, ephemeral_ports=True, udp_multicast=("239.2.3.1",))
    ports = {"tls": 40001, "udp": 40002, "http": 40003, "api": 40004, "enroll": 40005}
    first = worker_settings(s, index=1, ports=ports, bus="nats://127.0.0.1:4222", node_id="base")
    second = worker_settings(s, index=2, ports=ports, bus="nats://127.0.0.1:4222", node_id="base")
    assert (first.node_id, second.node_id) == ("base-w1", "base-w2")
    for w in (first, second):
        assert (w.tls_port, w.udp_port, w.http_port, w.api_port, w.enroll_port) == (40001, 40002, 40003, 40004, 40005)
        assert (w.workers, w.ephemeral_ports, w.bus) == (1, False, "nats://127.0.0.1:4222")
    assert (first.demo, second.demo) == (True, False)
    # Multicast reaches every member socket: only worker 1 joins.
    assert (first.udp_enabled, second.udp_enabled) == (True, False)
    unicast = _settings(udp_enabled=True)
    assert worker_settings(unicast, index=2, ports={}, bus="b", node_id="n").udp_enabled


def test_spec_round_trips_through_the_stdin_line() -> None:
    spec = WorkerSpec(index=2, count=3, restarts=1, settings=_settings(client_groups={"alice": ("Cyan",)}))
    line = encode_spec(spec)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert read_spec(io.BytesIO(line)) == spec
    with pytest.raises(ConfigError, match="supervisor's settings"):
        read_spec(io.BytesIO(b"not json\n"))


@pytest.mark.parametrize(("values", "said"), [({"storage": "memory://"}, "memory://"),
                                              ({"federation_enabled": True}, "federation")])
def test_unsafe_combinations_are_refused(values: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        refuse_unsafe(_settings(**values))


def test_a_reserved_port_is_shared_with_reuseport_listeners_only() -> None:
    (http,) = [x for x in planned_listeners(_settings(tls_port=0, api_port=0, enroll_port=0)) if x.name == "http"]
    held = reserve(http, ephemeral=True)
    port = held.getsockname()[1]
    try:
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
        with socket.socket() as stranger, pytest.raises(OSError):
            stranger.bind(("127.0.0.1", port))
    finally:
        held.close()
