"""The node's Meshtastic gateways: one per ``[[meshtastic]]`` entry or ``--feed meshtastic+...`` URL."""

from __future__ import annotations

import random
import zlib

from rallypoint.clock import Clock
from rallypoint.config import Settings
from rallypoint.connectors.meshtastic.gateway import MeshGateway, MeshService
from rallypoint.connectors.meshtastic.links import opener
from rallypoint.connectors.meshtastic.spec import mesh_specs
from rallypoint.routing.envelope import ANON_GROUP
from rallypoint.routing.ids import NodeIds
from rallypoint.services.ingest import Ingest


def mesh_service(settings: Settings, clock: Clock, ingest: Ingest, ids: NodeIds) -> MeshService:
    """A gateway per configured mesh (``ConfigError`` names a bad one), hooked to ingest; started by the node."""
    # The node id an MQTT gateway publishes as when the URL names none: stable for this server.
    default_node = zlib.crc32(f"rallypoint-{ids.node}".encode()) | 0x8000_0000
    gateways = []
    for spec in mesh_specs(settings.meshtastic, default_node=default_node):
        session = ids.session_id(f"mesh-{spec.name}")
        groups = frozenset(spec.groups) or frozenset({ANON_GROUP})
        gateways.append(MeshGateway(
            spec, clock=clock, accept=ingest.accept, deliver=ingest.deliver,
            origin=ids.origin(session, groups), open_link=opener(spec), rng=random.Random(),
        ))
    service = MeshService(gateways)
    if gateways:  # meshes are configured at start only: without one the hook would do nothing
        ingest.add_hook(service.observe)
    return service
