"""``--bus``: ``local`` or NATS server URLs; anything else is a configuration error."""

from __future__ import annotations

import pytest

from rallypoint.bus.factory import bus_counters, bus_drops, bus_gauges, open_bus
from rallypoint.bus.local import LocalBus
from rallypoint.bus.nats import NatsBus
from rallypoint.errors import ConfigError


def test_local_is_the_in_process_bus() -> None:
    bus = open_bus("local", "node-a")
    assert isinstance(bus, LocalBus) and bus.node == "node-a"
    assert bus_gauges(bus) == bus_counters(bus) == bus_drops(bus) == []


@pytest.mark.parametrize(("url", "servers"), [
    ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
    ("nats://a:4222, nats://b:4222", "nats://a:4222,nats://b:4222"),
    ("tls://nats.example:4222", "tls://nats.example:4222"),
])
async def test_nats_urls_select_the_nats_bus(url: str, servers: str) -> None:
    bus = open_bus(url, "node-a")
    assert isinstance(bus, NatsBus) and bus.url == servers and bus.node == "node-a"
    assert [name for name, _, _ in bus_counters(bus)] == [
        "rallypoint_bus_sent", "rallypoint_bus_received", "rallypoint_bus_duplicates", "rallypoint_bus_reconnects"]


@pytest.mark.parametrize("url", ["", "nats", "nats://", "kafka://x:9092", "redis://localhost", "nats://a:1,local"])
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="use 'local' or nats://host:port"):
        open_bus(url, "node-a")
