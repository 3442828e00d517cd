"""JetStream settings in the bus URL: parsed and checked before anything connects."""

from __future__ import annotations

import pytest
from nats.js import api

from rallypoint.bus.factory import open_bus
from rallypoint.bus.jetstream_config import JetStreamSettings, split_bus_url
from rallypoint.bus.nats import NatsBus
from rallypoint.errors import ConfigError


def test_the_query_after_the_last_server_sets_the_whole_bus() -> None:
    servers, settings = split_bus_url("nats://a:4222,nats://b:4222?replicas=3&max_age=172800&cluster=ops")
    assert servers == "nats://a:4222,nats://b:4222"
    assert settings == JetStreamSettings(cluster="ops", replicas=3, storage="file", max_age_s=172800.0)


def test_a_url_without_settings_keeps_its_meaning() -> None:
    assert split_bus_url("nats://a:4222") == ("nats://a:4222", JetStreamSettings())
    bus = open_bus("nats://a:4222", "node-a")
    assert isinstance(bus, NatsBus) and bus.url == "nats://a:4222" and bus.subjects.stream == "RP_RALLYPOINT"


def test_the_bus_is_built_with_the_settings() -> None:
    bus = open_bus("nats://a:4222?cluster=ops&storage=memory&replicas=2", "node-a")
    assert isinstance(bus, NatsBus)
    assert bus.url == "nats://a:4222" and bus.subjects.stream == "RP_OPS"
    assert split_bus_url("nats://a?storage=memory")[1].storage_type == api.StorageType.MEMORY


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("replicas=0", "replicas must be between 1 and 5"),
        ("replicas=three", "replicas must be a whole number"),
        ("storage=disk", "storage must be file or memory"),
        ("max_age=10", "max_age must be between 60 and"),
        ("max_age=inf", "max_age must be between 60 and"),
        ("max_age=later", "max_age must be a number of seconds"),
        ("cluster=a.b", "bus cluster name 'a.b'"),
        ("stream=X", "unknown parameter 'stream'"),
        ("replicas=1&replicas=3", "replicas is given twice"),
        ("replicas", "name=value pairs"),
    ],
)
def test_bad_settings_are_config_errors(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_bus(f"nats://a:4222?{query}", "node-a")
