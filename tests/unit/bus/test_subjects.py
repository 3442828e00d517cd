"""NATS names: positions and bulk on core NATS, everything a user would miss on JetStream."""

from __future__ import annotations

import pytest

from rallypoint.bus.latest import key_of, uid_of
from rallypoint.bus.subjects import Transport, safe_name, subjects_for, transport_of
from rallypoint.errors import ConfigError
from rallypoint.model.cot_type import Priority, priority_of


@pytest.mark.parametrize(("cot_type", "transport"), [
    ("a-f-G-U-C", Transport.CORE),          # positions
    ("a-h-A-M-F", Transport.CORE),
    ("x-adsb-feed", Transport.CORE),        # unclassified: bulk
    ("b-t-f", Transport.JETSTREAM),         # chat
    ("b-t-f-d", Transport.JETSTREAM),       # chat receipts
    ("b-a-o-tbl", Transport.JETSTREAM),     # emergency
    ("b-a-o-can", Transport.JETSTREAM),
    ("t-x-d-d", Transport.JETSTREAM),       # delete
    ("t-s", Transport.JETSTREAM),           # task
    ("t-x-m-c", Transport.JETSTREAM),       # mission change
    ("b-m-p-s-p-i", Transport.JETSTREAM),   # designation (SPI)
    ("u-d-f", Transport.JETSTREAM),         # drawing
])
def test_each_type_travels_by_its_class(cot_type: str, transport: Transport) -> None:
    assert transport_of(priority_of(cot_type)) is transport


def test_the_names_of_a_cluster() -> None:
    s = subjects_for("east-1")
    assert s.subject_for(Priority.POSITION) == s.subject_for(Priority.OTHER_POSITION) == "rp.east-1.position"
    assert s.subject_for(Priority.BULK) == "rp.east-1.bulk"
    assert s.subject_for(Priority.EMERGENCY) == "rp.east-1.js.emergency"
    assert s.subject_for(Priority.MESSAGE) == "rp.east-1.js.message"
    assert s.core_subjects() == ("rp.east-1.bulk", "rp.east-1.position")
    assert (s.core_wildcard, s.jetstream_wildcard) == ("rp.east-1.*", "rp.east-1.js.>")
    assert (s.stream, s.latest_bucket) == ("RP_EAST-1", "rp_east-1_latest")


@pytest.mark.parametrize("cluster", ["", "a.b", "a b", "*", ">", "x" * 65, "été"])
def test_a_cluster_name_nats_would_refuse_is_a_config_error(cluster: str) -> None:
    with pytest.raises(ConfigError):
        subjects_for(cluster)


def test_node_ids_become_valid_consumer_names() -> None:
    s = subjects_for()
    assert s.consumer_for("rallypoint-0a1b2c") == "rp_rallypoint-0a1b2c"
    odd = [s.consumer_for(n) for n in ("node.1", "node 1", "node*1", "node.1 ")]
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for name in odd)
    assert len(set(odd)) == len(odd)
    assert safe_name("ok_name") == "ok_name"


@pytest.mark.parametrize("uid", [
    "ANDROID-589520ccfcd20f01", "GeoChat.x.All Chat Rooms.17", "a*b", "a>b", "trailing.", ".lead", "a..b",
    "=looks-encoded", "été", "S-1-5-21-942292099-3747883346-3641641706-1000",
])
def test_every_uid_is_a_valid_kv_key_and_comes_back(uid: str) -> None:
    key = key_of(uid)
    assert uid_of(key) == uid
    assert all(c.isascii() and (c.isalnum() or c in "-/_=.") for c in key)
    assert not key.startswith(".") and not key.endswith(".") and ".." not in key
