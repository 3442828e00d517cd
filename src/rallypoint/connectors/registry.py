"""Which decoder reads which source format.

A format whose decoder is not part of this build is refused when the feed is defined
(``check_available``), so a feed never starts only to fail on its first byte.
"""

from __future__ import annotations

from datetime import datetime

from rallypoint.connectors.adsb_json import AdsbJsonDecoder
from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.aprs import AprsDecoder
from rallypoint.connectors.base import DocumentDecoder, StreamDecoder
from rallypoint.connectors.cot_feed import CotDatagramDecoder, CotStreamDecoder
from rallypoint.connectors.geo_files import GeoJsonDecoder, KmlDecoder
from rallypoint.connectors.modes import ModesDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.connectors.sbs import SbsDecoder
from rallypoint.connectors.spec import FeedSpec, FeedUrlError, SourceFormat, Transport
from rallypoint.model.track import Observation
from rallypoint.services.feed_types import LayerItem, LayerSink

STREAM_READERS = frozenset({SourceFormat.SBS, SourceFormat.MODES, SourceFormat.AIS, SourceFormat.NMEA,
                            SourceFormat.APRS, SourceFormat.COT})
DOCUMENT_READERS = frozenset({SourceFormat.ADSB_JSON, SourceFormat.GEOJSON, SourceFormat.KML})


def check_available(spec: FeedSpec) -> None:
    """``FeedUrlError`` when no decoder of this build reads the feed's format."""
    if spec.format not in STREAM_READERS | DOCUMENT_READERS:
        raise FeedUrlError(f"feed {spec.name!r}: the {spec.format.value} decoder is not available in this build")


def stream_decoder(spec: FeedSpec) -> StreamDecoder:
    """A fresh decoder for a stream feed (bytes as they come)."""
    match spec.format:
        case SourceFormat.SBS:
            return SbsDecoder(spec.name)
        case SourceFormat.MODES:
            return ModesDecoder(spec.name, receiver=spec.receiver)
        case SourceFormat.AIS:
            return AisDecoder(spec.name)
        case SourceFormat.NMEA:
            return NmeaDecoder(spec.name)
        case SourceFormat.APRS:
            return AprsDecoder(spec.name)
        case SourceFormat.COT if spec.transport is Transport.UDP:
            return CotDatagramDecoder(spec.name)
        case SourceFormat.COT:
            return CotStreamDecoder(spec.name)
    raise FeedUrlError(f"feed {spec.name!r}: no stream decoder for {spec.format.value}")


def document_decoder(spec: FeedSpec, layers: LayerSink) -> DocumentDecoder:
    """A fresh decoder for a document feed (one whole document at a time); map layers go to ``layers``."""
    match spec.format:
        case SourceFormat.ADSB_JSON:
            return AdsbJsonDecoder(spec.name)
        case SourceFormat.GEOJSON:
            return LayerDecoder(spec.name, GeoJsonDecoder(spec.name), layers)
        case SourceFormat.KML:
            return LayerDecoder(spec.name, KmlDecoder(spec.name), layers)
    raise FeedUrlError(f"feed {spec.name!r}: no document decoder for {spec.format.value}")


class LayerDecoder:
    """A map layer is drawn, not tracked: each whole document goes to the layer sink as items, and
    nothing goes to the tracker (a layer's points do not move and must not be associated with tracks)."""

    def __init__(self, name: str, reader: GeoJsonDecoder | KmlDecoder, layers: LayerSink) -> None:
        self._name = name
        self._reader = reader
        self._layers = layers
        self.rejects = reader.rejects

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        """Hand the document's items to the layer sink; returns no observations."""
        rejected = self.rejects.total
        layer = self._reader.decode_layer(document, received_at)
        items = [
            LayerItem(id=o.identity.value if o.identity is not None else f"{o.lat:.6f},{o.lon:.6f}", kind="point",
                      points=((o.lat, o.lon),), name=o.name)
            for o in layer.observations
        ]
        items += [LayerItem(id=s.id, kind=s.kind, points=s.points, name=s.name) for s in layer.shapes]
        if layer.observations or layer.shapes or self.rejects.total == rejected:
            # A document that failed to decode as a whole leaves the layer as it was.
            self._layers(self._name, items)
        return []
