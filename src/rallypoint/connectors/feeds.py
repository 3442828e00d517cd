"""A feed, opened: the runner for its transport around the decoder for its format.

Runners carry bytes, decoders read them, the sink (the feed service) takes the observations.
"""

from __future__ import annotations

import random

from rallypoint import __version__
from rallypoint.clock import Clock
from rallypoint.config import FeedConfig
from rallypoint.connectors.aprs import login_line
from rallypoint.connectors.registry import check_available, document_decoder, stream_decoder
from rallypoint.connectors.runners.datagram import UdpRunner
from rallypoint.connectors.runners.documents import FileWatchRunner, HttpPollRunner
from rallypoint.connectors.runners.stream import TcpClientRunner, TcpServerRunner
from rallypoint.connectors.spec import FeedSpec, SourceFormat, Transport, parse_feed_url, public_url
from rallypoint.services.feed_types import FeedInfo, FeedOpener, FeedRunner, LayerSink, ObservationSink


def open_runner(
    spec: FeedSpec, clock: Clock, sink: ObservationSink, rng: random.Random, layers: LayerSink | None = None
) -> FeedRunner:
    """The runner that carries ``spec``'s feed into ``sink`` (not started: the caller awaits ``run()``).

    Map layers (GeoJSON, KML) go to ``layers`` instead, one whole document at a time.
    """
    layer_sink: LayerSink = layers or (lambda _name, _items: None)
    # XML streams have no line ending to close a half event; line formats get one when a stream ends.
    end: bytes | None = None if spec.format is SourceFormat.COT else b"\n"
    match spec.transport:
        case Transport.TCP_CLIENT:
            return TcpClientRunner(
                spec.name, spec.host, spec.port, lambda: stream_decoder(spec), clock, sink, rng,
                hello=aprs_login(spec) if spec.format is SourceFormat.APRS else b"", end_of_stream=end,
            )
        case Transport.TCP_SERVER:
            return TcpServerRunner(spec.name, spec.host, spec.port, lambda: stream_decoder(spec), clock, sink,
                                   end_of_stream=end)
        case Transport.UDP:
            return UdpRunner(spec.name, spec.host, spec.port, lambda: stream_decoder(spec), clock, sink,
                             multicast=spec.multicast, interface=spec.interface, end_of_datagram=end)
        case Transport.HTTP:
            return HttpPollRunner(spec.name, spec.document_url, lambda: document_decoder(spec, layer_sink), clock,
                                  sink, rng, interval_s=spec.interval_s)
        case Transport.FILE:
            return FileWatchRunner(spec.name, spec.path, lambda: document_decoder(spec, layer_sink), clock, sink,
                                   interval_s=spec.interval_s)


def aprs_login(spec: FeedSpec) -> bytes:
    """The APRS-IS login line: call sign, passcode (-1, the default: receive only), our name, the filter."""
    return login_line(spec.login, software="Rallypoint", version=__version__, server_filter=spec.filter or None,
                      code=int(spec.passcode or "-1"))


def feed_opener(clock: Clock, rng: random.Random) -> FeedOpener:
    """The node's way to open a feed from its definition (configuration or ``POST /api/feeds``)."""

    def open_feed(config: FeedConfig, sink: ObservationSink, layers: LayerSink) -> tuple[FeedInfo, FeedRunner]:
        spec = parse_feed_url(config.url, name=config.name or None, groups=config.groups, stale_s=config.stale_s,
                              quality_m=config.quality)
        check_available(spec)
        info = FeedInfo(name=spec.name, url=public_url(spec), format=spec.format.value,
                        transport=spec.transport.value, groups=spec.groups, stale_s=spec.stale_s,
                        quality_m=spec.quality_m)
        return info, open_runner(spec, clock, sink, random.Random(rng.random()), layers)

    return open_feed
