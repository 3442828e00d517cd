"""Every delivery goes through the bus: no ``offer`` outside the dispatcher but the justified local ones.

A direct ``Subscriber.offer`` reaches a session of this node only; a publication reaches the
addressed session wherever it is connected. The few offers left are local by nature, each with a
comment saying why where it is made.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rallypoint"

# (module, enclosing function) -> why an offer may be made there.
ALLOWED = {
    ("delivery/dispatcher.py", "deliver"): "the dispatcher resolving an audience",
    ("transport/session.py", "offer"): "the session's own output",
    ("transport/session_output.py", "offer_many"): "a run the dispatcher delivered, offered one by one",
    ("transport/session.py", "connection_made"): "the picture a new local session is given",
    ("transport/session.py", "regroup"): "a protocol reply to that very socket",
    ("services/sessions.py", "regrouped"): "the picture a local session may now see",
    ("federation/link.py", "load"): "a link re-queueing envelopes already delivered to it",
    ("services/missions_post.py", "to_addressees"): "MissionPost.offer, which publishes",
    ("bus/nats.py", "publish"): "the NATS bus's outgoing queue",
    ("services/mailbox_remote.py", "deliver"): "kept mail the bus brought to a session of this node",
    # Not deliveries to sessions: bus subscribers queueing what they observed into their own structures.
    ("connectors/meshtastic/gateway.py", "observe"): "the mesh channel's byte budget queue (MeshBudget.offer)",
    ("services/feeds.py", "observe"): "TAK users' positions held for the tracker's next tick",
}


def _offers() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in SRC.rglob("*.py"):
        module = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "offer"
                ):
                    found.add((module, func.name))
    return found


def test_no_direct_offer_outside_the_dispatcher_and_the_local_exceptions() -> None:
    unexpected = sorted(_offers() - set(ALLOWED))
    assert unexpected == [], f"deliver through the bus (Ingest.deliver / an Audience), not offer(): {unexpected}"
