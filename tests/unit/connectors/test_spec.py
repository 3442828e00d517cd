"""Feed URLs: every scheme of docs/feeds.md parses into a FeedSpec; bad URLs get an error that says why."""

from __future__ import annotations

import pytest

from rallypoint.config import FeedConfig, load_settings, with_feed_urls
from rallypoint.connectors.spec import (
    FeedUrlError,
    SourceFormat,
    Transport,
    feed_specs,
    parse_feed_url,
    public_url,
)
from rallypoint.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "fmt", "transport", "host", "port"),
    [
        ("sbs+tcp://radar.local:30003", SourceFormat.SBS, Transport.TCP_CLIENT, "radar.local", 30003),
        ("adsb-json+http://pi/data/aircraft.json", SourceFormat.ADSB_JSON, Transport.HTTP, "pi", 80),
        ("ais+udp://0.0.0.0:10110", SourceFormat.AIS, Transport.UDP, "0.0.0.0", 10110),
        ("ais+tcp://153.44.253.27:5631", SourceFormat.AIS, Transport.TCP_CLIENT, "153.44.253.27", 5631),
        ("nmea+tcp://gps:10110", SourceFormat.NMEA, Transport.TCP_CLIENT, "gps", 10110),
        ("nmea+udp://127.0.0.1:10111", SourceFormat.NMEA, Transport.UDP, "127.0.0.1", 10111),
        ("aprs+tcp://rotate.aprs2.net:14580?login=N0CALL&filter=r/51.5/-0.1/50", SourceFormat.APRS,
         Transport.TCP_CLIENT, "rotate.aprs2.net", 14580),
        ("cot+tcp://other:8087", SourceFormat.COT, Transport.TCP_CLIENT, "other", 8087),
        ("cot+udp://239.2.3.1:6969", SourceFormat.COT, Transport.UDP, "239.2.3.1", 6969),
        ("modes+tcp://pi:30002", SourceFormat.MODES, Transport.TCP_CLIENT, "pi", 30002),
        ("ais+tcp://0.0.0.0:5000?listen=1", SourceFormat.AIS, Transport.TCP_SERVER, "0.0.0.0", 5000),
    ],
)
def test_stream_urls(url: str, fmt: SourceFormat, transport: Transport, host: str, port: int) -> None:
    spec = parse_feed_url(url)
    assert (spec.format, spec.transport, spec.host, spec.port) == (fmt, transport, host, port)
    assert spec.url == url


def test_file_and_http_urls() -> None:
    geo = parse_feed_url("geojson+file:///srv/layers/zones.geojson")
    assert (geo.transport, geo.path, geo.name) == (Transport.FILE, "/srv/layers/zones.geojson", "geojson-zones")
    kml = parse_feed_url("kml+file:///srv/layers/sectors.kmz?interval=30")
    assert (kml.format, kml.interval_s) == (SourceFormat.KML, 30.0)
    poll = parse_feed_url("adsb-json+https://pi:8443/data/aircraft.json?interval=2&name=roof")
    assert poll.document_url == "https://pi:8443/data/aircraft.json"
    assert (poll.interval_s, poll.name, poll.port) == (2.0, "roof", 8443)


def test_multicast_and_aprs_details() -> None:
    mesh = parse_feed_url("cot+udp://239.2.3.1:6969?interface=10.0.0.5")
    assert (mesh.multicast, mesh.interface) == ("239.2.3.1", "10.0.0.5")
    aprs = parse_feed_url("aprs+tcp://aprs:14580?login=n0call-7&passcode=12345&filter=r/51/0/50")
    assert (aprs.login, aprs.passcode, aprs.filter) == ("N0CALL-7", "12345", "r/51/0/50")
    assert "12345" not in public_url(aprs)
    assert parse_feed_url("aprs+tcp://aprs:14580?login=N0CALL").passcode == "-1"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sbs://h:30003", "<format>+<transport>"),
        ("adsb+tcp://h:1", "unknown format 'adsb'"),
        ("sbs+udp://h:1", "format sbs cannot use udp"),
        ("sbs+ftp://h:1", "unknown transport 'ftp'"),
        ("sbs+tcp://h", "needs a port"),
        ("sbs+tcp://h:70000", "port must be 1-65535"),
        ("sbs+tcp://:30003", "needs host:port"),
        ("sbs+tcp://h:1/path", "has no path"),
        ("geojson+file://host/x.geojson", "has no host"),
        ("aprs+tcp://h:14580", "login=CALLSIGN"),
        ("aprs+tcp://h:14580?login=N0CALL&passcode=abc", "passcode must be a number"),
        ("sbs+tcp://h:1?login=x", "unknown parameter(s) login"),
        ("ais+udp://somehost:1", "binds an IP address"),
        ("ais+udp://127.0.0.1:1?interface=10.0.0.1", "only applies to a multicast group"),
        ("adsb-json+http://h/a.json?interval=0", "interval must be"),
        ("ais+tcp://h:1?listen=maybe", "listen must be 1 or 0"),
        ("ais+tcp://h:1?name=bad name", "feed name 'bad name'"),
    ],
)
def test_bad_urls_say_why(url: str, words: str) -> None:
    with pytest.raises(FeedUrlError) as err:
        parse_feed_url(url)
    assert words in str(err.value)
    assert isinstance(err.value, ConfigError)


def test_a_mode_s_feed_may_say_where_its_receiver_stands() -> None:
    assert parse_feed_url("modes+tcp://pi:30002?receiver=52.3,4.76").receiver == (52.3, 4.76)
    assert parse_feed_url("modes+tcp://pi:30002").receiver is None
    for bad in ("modes+tcp://pi:30002?receiver=north", "modes+tcp://pi:30002?receiver=95,0"):
        with pytest.raises(FeedUrlError, match="receiver"):
            parse_feed_url(bad)
    with pytest.raises(FeedUrlError, match="unknown parameter"):
        parse_feed_url("sbs+tcp://pi:30003?receiver=52.3,4.76")


def test_feed_fields_are_checked() -> None:
    with pytest.raises(FeedUrlError, match="stale_s"):
        parse_feed_url("sbs+tcp://h:1", stale_s=0.1)
    with pytest.raises(FeedUrlError, match="quality"):
        parse_feed_url("sbs+tcp://h:1", quality_m=-3)
    with pytest.raises(FeedUrlError, match="group"):
        parse_feed_url("sbs+tcp://h:1", groups=("<x>",))
    spec = parse_feed_url("sbs+tcp://h:1", name="tower", groups=("Blue", "Blue", "Red"), stale_s=30, quality_m=50)
    assert (spec.name, spec.groups, spec.stale_s, spec.quality_m) == ("tower", ("Blue", "Red"), 30, 50)


def test_toml_feeds_and_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "rallypoint.toml"
    config.write_text(
        '[rallypoint]\n'
        '[[rallypoint.feeds]]\nname = "harbour"\nurl = "ais+udp://0.0.0.0:10110"\ngroups = ["Port"]\n'
        'stale_s = 600\nquality = 25.0\n'
    )
    settings = with_feed_urls(load_settings(config, environ={}), ["sbs+tcp://127.0.0.1:30003"])
    assert settings.feeds == (
        FeedConfig(name="harbour", url="ais+udp://0.0.0.0:10110", groups=("Port",), stale_s=600, quality=25.0),
        FeedConfig(url="sbs+tcp://127.0.0.1:30003"),
    )
    specs = feed_specs(settings.feeds)
    assert [s.name for s in specs] == ["harbour", "sbs-127.0.0.1-30003"]
    assert specs[0].groups == ("Port",) and specs[0].quality_m == 25.0


def test_duplicate_feed_names_are_refused() -> None:
    with pytest.raises(FeedUrlError, match="two feeds are named"):
        feed_specs([FeedConfig(url="sbs+tcp://h:1"), FeedConfig(url="sbs+tcp://h:1")])
    with pytest.raises(ConfigError, match="same name"):
        load_settings(environ={"RALLYPOINT_FEEDS": '[{"name": "a", "url": "sbs+tcp://h:1"},'
                                                   ' {"name": "a", "url": "sbs+tcp://h:2"}]'})


def test_feeds_from_the_environment() -> None:
    settings = load_settings(environ={"RALLYPOINT_FEEDS": '[{"url": "nmea+udp://127.0.0.1:10110"}]'})
    assert settings.feeds == (FeedConfig(url="nmea+udp://127.0.0.1:10110"),)


def test_serve_refuses_a_bad_feed_flag_before_starting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from rallypoint.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--feed", "sbs+tcp://127.0.0.1:30003",
                                      "--feed", "ais+tcp://127.0.0.1"])
    assert result.exit_code == 2
    assert "configuration error: feed URL 'ais+tcp://127.0.0.1': needs a port" in result.output
    assert not (tmp_path / "ca").exists()  # refused before the node was built


def test_feeds_need_a_single_worker() -> None:
    with pytest.raises(ConfigError, match="workers = 1"):
        load_settings(environ={"RALLYPOINT_WORKERS": "2", "RALLYPOINT_FEEDS": '[{"url": "sbs+tcp://h:1"}]'})
    with pytest.raises(ConfigError, match="workers = 1"):
        with_feed_urls(load_settings(environ={"RALLYPOINT_WORKERS": "2"}), ["sbs+tcp://h:1"])
