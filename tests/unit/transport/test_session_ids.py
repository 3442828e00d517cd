"""Stream sessions take their ids from the node (unique across nodes) and stamp their origin with it."""

from __future__ import annotations

from typing import Any, cast

from rallypoint.clock import ManualClock
from rallypoint.protocol.limits import Limits
from rallypoint.routing.ids import NodeIds
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession


def _ctx(ids: NodeIds) -> TransportContext:
    return TransportContext(
        ingest=cast(Any, None), hub=cast(Any, None), metrics=ServerMetrics(), clock=ManualClock(), limits=Limits(),
        principal_of=lambda der: None, access_of=lambda principal: (frozenset(), frozenset()), ids=ids,
    )


def test_sessions_of_two_nodes_in_one_process_have_different_ids() -> None:
    alpha, bravo = _ctx(NodeIds("alpha", "r")), _ctx(NodeIds("bravo", "r"))
    a, b = StreamSession(alpha, transport_name="tls"), StreamSession(bravo, transport_name="tls")
    assert (a.id, b.id) == ("alpha:r:tls-1", "bravo:r:tls-1")
    assert StreamSession(alpha, transport_name="tls").id == "alpha:r:tls-2"


def test_a_sessions_origin_names_its_node() -> None:
    session = StreamSession(_ctx(NodeIds("alpha", "r")), transport_name="tcp")
    assert session.origin.node == "alpha" and session.origin.session_id == session.id
