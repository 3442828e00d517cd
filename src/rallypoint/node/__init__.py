"""Composition root: ``build_node(settings)`` picks the concrete classes; ``Node.run()`` owns every task."""

from rallypoint.node.build import FEATURES, build_node
from rallypoint.node.core import Node

__all__ = ["FEATURES", "Node", "build_node"]
