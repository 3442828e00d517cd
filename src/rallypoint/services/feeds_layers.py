"""Map layers (GeoJSON, KML) said as CoT drawings, kept fresh, and removed when they leave the layer.

Layers are drawn, not tracked: a point is a spot marker (``b-m-p-s-m``), a line or polygon a
drawing (``u-d-f``, whose ``<link point>`` vertices close the ring for a polygon). Every item has
the uid ``layer.<feed>.<id>``. A layer's items are sent again every half stale time, so late
joiners and clients whose copy went stale get them while the layer holds them; an item missing
from the next document of its feed is deleted on maps (``t-x-d-d`` with ``__forcedelete``).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.cot_type import DELETE
from rallypoint.protocol.xml_codec import make_event
from rallypoint.services.feed_types import LayerItem

DEFAULT_LAYER_STALE_S = 24 * 3600.0
# Vertices kept per drawing: ATAK draws tens of thousands poorly and a CoT event has a size cap.
MAX_VERTICES = 1000
POINT_TYPE = "b-m-p-s-m"
DRAWING_TYPE = "u-d-f"
_UNKNOWN = 9_999_999.0
_HOW = "h-e"


def layer_uid(feed: str, item_id: str) -> str:
    """The CoT uid of a layer item."""
    return f"layer.{feed}.{item_id}"


def thinned(points: Sequence[tuple[float, float]], limit: int = MAX_VERTICES) -> list[tuple[float, float]]:
    """At most ``limit`` vertices, evenly picked, first and last kept (a ring stays closed)."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def item_event(feed: str, item: LayerItem, *, now_ms: int, stale_s: float) -> CotEvent:
    """The CoT event drawing ``item`` of layer ``feed``."""
    name = item.name or item.id
    sources = f"<__rallypoint_sources fused=\"false\" status=\"layer\"><source name={quoteattr(feed)}/>" \
              "</__rallypoint_sources>"
    if item.kind == "point":
        lat, lon = item.points[0]
        detail = f"<contact callsign={quoteattr(name)}/>{sources}"
        kind, where = POINT_TYPE, Point(lat, lon, _UNKNOWN, _UNKNOWN, _UNKNOWN)
    else:
        vertices = thinned(item.points)
        links = "".join(f"<link point=\"{lat:.7f},{lon:.7f}\"/>" for lat, lon in vertices)
        fill = "<fillColor value=\"1358954495\"/>" if item.kind == "polygon" else ""
        detail = (
            f"<contact callsign={quoteattr(name)}/>{links}<strokeColor value=\"-1\"/>"
            f"<strokeWeight value=\"3.0\"/>{fill}<labels_on value=\"true\"/>{sources}"
        )
        lat, lon = vertices[0]
        kind, where = DRAWING_TYPE, Point(lat, lon, _UNKNOWN, _UNKNOWN, _UNKNOWN)
    return make_event(
        uid=layer_uid(feed, item.id), type=kind, how=_HOW, time=now_ms, start=now_ms,
        stale=now_ms + int(stale_s * 1000), point=where, detail_xml=detail.encode(),
    )


def removal_event(uid: str, item_type: str, *, now_ms: int) -> CotEvent:
    """``t-x-d-d`` removing layer item ``uid`` from maps."""
    detail = f"<link uid={quoteattr(uid)} relation=\"p-p\" type={quoteattr(item_type)}/><__forcedelete/>"
    return make_event(
        uid=f"{uid}.delete", type=DELETE, how=_HOW, time=now_ms, start=now_ms, stale=now_ms + 60_000,
        point=Point(0.0, 0.0, _UNKNOWN, _UNKNOWN, _UNKNOWN), detail_xml=detail.encode(),
    )


class LayerBook:
    """What each layer feed's latest document held, and when it was last sent."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, LayerItem]] = {}
        self._sent_ms: dict[str, int] = {}

    def replace(self, feed: str, items: Sequence[LayerItem]) -> list[tuple[str, str]]:
        """Keep ``items`` as the layer of ``feed``; returns (uid, type) of the items that left it."""
        new = {item.id: item for item in items}
        old = self._items.get(feed, {})
        gone = [(layer_uid(feed, key), POINT_TYPE if item.kind == "point" else DRAWING_TYPE)
                for key, item in old.items() if key not in new]
        self._items[feed] = new
        return gone

    def items(self, feed: str) -> list[LayerItem]:
        """The items the layer of ``feed`` holds now."""
        return list(self._items.get(feed, {}).values())

    def due(self, now_ms: int, stale_of: dict[str, float]) -> list[str]:
        """Feeds whose layer was sent more than half its stale time ago."""
        return [feed for feed in self._items
                if now_ms - self._sent_ms.get(feed, 0) >= stale_of.get(feed, DEFAULT_LAYER_STALE_S) * 500]

    def sent(self, feed: str, now_ms: int) -> None:
        """The layer of ``feed`` was just sent."""
        self._sent_ms[feed] = now_ms

    def forget(self, feed: str) -> list[tuple[str, str]]:
        """The feed was removed: its items leave maps."""
        self._sent_ms.pop(feed, None)
        return self.replace(feed, []) if feed in self._items else []
