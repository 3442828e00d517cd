"""Which decoder reads which source format.

A format whose decoder is not part of this build is refused when the feed is defined
(``check_available``), so a feed never starts only to fail on its first byte.
"""

from __future__ import annotations

from rallypoint.connectors.adsb_json import AdsbJsonDecoder
from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.aprs import AprsDecoder
from rallypoint.connectors.base import DocumentDecoder, StreamDecoder
from rallypoint.connectors.modes import ModesDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.connectors.sbs import SbsDecoder
from rallypoint.connectors.spec import FeedSpec, FeedUrlError, SourceFormat

STREAM_READERS = frozenset({SourceFormat.SBS, SourceFormat.MODES, SourceFormat.AIS, SourceFormat.NMEA,
                            SourceFormat.APRS})
DOCUMENT_READERS = frozenset({SourceFormat.ADSB_JSON})


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
            return ModesDecoder(spec.name)
        case SourceFormat.AIS:
            return AisDecoder(spec.name)
        case SourceFormat.NMEA:
            return NmeaDecoder(spec.name)
        case SourceFormat.APRS:
            return AprsDecoder(spec.name)
    raise FeedUrlError(f"feed {spec.name!r}: no stream decoder for {spec.format.value}")


def document_decoder(spec: FeedSpec) -> DocumentDecoder:
    """A fresh decoder for a document feed (one whole document at a time)."""
    match spec.format:
        case SourceFormat.ADSB_JSON:
            return AdsbJsonDecoder(spec.name)
    raise FeedUrlError(f"feed {spec.name!r}: no document decoder for {spec.format.value}")
