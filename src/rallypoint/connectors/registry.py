"""Which decoder reads which source format.

A format whose decoder is not part of this build is refused when the feed is defined
(``available(spec)``), so a feed never starts only to fail on its first byte.
"""

from __future__ import annotations

from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.base import DocumentDecoder, StreamDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.connectors.spec import DOCUMENT_FORMATS, FeedSpec, FeedUrlError, SourceFormat

STREAM_FORMATS = frozenset({SourceFormat.AIS, SourceFormat.NMEA})
DOCUMENT_READERS: frozenset[SourceFormat] = frozenset()


def check_available(spec: FeedSpec) -> None:
    """``FeedUrlError`` when no decoder of this build reads the feed's format."""
    if spec.format not in STREAM_FORMATS | DOCUMENT_READERS:
        raise FeedUrlError(f"feed {spec.name!r}: the {spec.format.value} decoder is not available in this build")


def stream_decoder(spec: FeedSpec) -> StreamDecoder:
    """A fresh decoder for a stream feed (bytes as they come)."""
    match spec.format:
        case SourceFormat.AIS:
            return AisDecoder(spec.name)
        case SourceFormat.NMEA:
            return NmeaDecoder(spec.name)
    raise FeedUrlError(f"feed {spec.name!r}: no stream decoder for {spec.format.value}")


def document_decoder(spec: FeedSpec) -> DocumentDecoder:
    """A fresh decoder for a document feed (one whole document at a time)."""
    if spec.format not in DOCUMENT_FORMATS:
        raise FeedUrlError(f"feed {spec.name!r}: {spec.format.value} is not a document format")
    raise FeedUrlError(f"feed {spec.name!r}: no document decoder for {spec.format.value}")
