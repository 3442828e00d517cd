"""Ids that stay unique across the nodes of a cluster and across restarts of one node.

Session ids travel with envelopes (``Origin.session_id``) and are compared on every node: the
directory, presence and emergencies use them to tell "the same sender" apart. A per-process counter
would hand ``tls-1`` out again on every node and after every restart, so two different clients
would look like one. Each id therefore carries the node id and a random id of this run.
"""

from __future__ import annotations

import secrets

from rallypoint.routing.envelope import ANON_GROUP, Origin

# Bits of the random run id: a node restarted many times never repeats one in practice.
RUN_ID_BYTES = 4


class NodeIds:
    """Hands out the session ids of one running node: ``<node>:<run>:<kind>-<n>``.

    One instance per node, created at start-up and passed to every transport (no class-level
    counters: those are shared by every node built in one process, e.g. in tests).
    """

    __slots__ = ("_next", "node", "run")

    def __init__(self, node: str, run: str) -> None:
        if not node or not run:
            raise ValueError("node and run ids must not be empty")
        self.node = node
        self.run = run
        self._next: dict[str, int] = {}

    @classmethod
    def start(cls, node: str) -> NodeIds:
        """Ids for a fresh run of ``node`` (random run id)."""
        return cls(node, secrets.token_hex(RUN_ID_BYTES))

    def session_id(self, kind: str) -> str:
        """A new id for a session of ``kind`` (the transport name: ``tls``, ``tcp``, ``live``, ...)."""
        n = self._next.get(kind, 0) + 1
        self._next[kind] = n
        return f"{self.node}:{self.run}:{kind}-{n}"

    def origin(
        self, session_id: str, groups: frozenset[str] = frozenset({ANON_GROUP}), principal: str | None = None,
        read_groups: frozenset[str] | None = None,
    ) -> Origin:
        """The origin of events a local session sends, stamped with this node."""
        return Origin(session_id=session_id, groups=groups, principal=principal, node=self.node,
                      read_groups=read_groups)
