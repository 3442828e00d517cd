"""Video URL checks and credential redaction (model/video.py) and the XML shapes (services/video_xml.py)."""

from __future__ import annotations

import pytest

from rallypoint.model.video import (
    BadVideo,
    VideoConnection,
    VideoFeed,
    check_feed,
    check_url,
    redact_url,
    view_for,
)
from rallypoint.services.video_xml import feed_from_cot, parse_vcm, render_vcm, url_from_parts


@pytest.mark.parametrize("url", [
    "rtsp://10.0.0.1:8554/live", "rtsps://cam.example/a", "srt://h:8890?streamid=read:x", "rtmp://h/app/key",
    "rtmps://h/app", "udp://239.1.1.1:1234", "http://h/live/index.m3u8", "https://h/a/b.M3U8?token=x",
])
def test_stream_urls_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(("url", "words"), [
    ("file:///etc/passwd", "not a video stream"), ("javascript:alert(1)", "not a video stream"),
    ("http://h/clip.mp4", "HLS playlist"), ("rtsp://", "no host"), ("rtsp://h:99999/x", "not a valid URL"),
    ("rtsp://h/a b", "spaces"), ("rtsp://h/\x00", "control characters"), ("", "empty"),
    ("rtsp://h/" + "x" * 3000, "longer than"), ("rtsp://h:0/x", "port 0"),
])
def test_bad_urls_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(BadVideo, match=words):
        check_url(url)


def test_positions_checked() -> None:
    with pytest.raises(BadVideo, match="latitude"):
        check_feed(VideoFeed(uid="a", alias="a", url="rtsp://h/x", latitude=91.0))


def test_redaction_removes_userinfo_and_secret_query_values() -> None:
    assert redact_url("rtsp://user:pa%40ss@cam:554/live#frag") == "rtsp://cam:554/live"
    assert redact_url("srt://h:8890?streamid=%23!::r=live,u=bob,s=pw&passphrase=xyz&latency=120") == (
        "srt://h:8890?streamid=REDACTED&passphrase=REDACTED&latency=120")
    # An unescaped "#" starts a fragment: the fragment is never shown, whatever it holds.
    assert redact_url("srt://h:8890?streamid=#!::r=live,u=bob,s=pw&passphrase=xyz") == (
        "srt://h:8890?streamid=REDACTED")
    assert redact_url("https://h/live/index.m3u8?Token=abc&x=1") == "https://h/live/index.m3u8?Token=REDACTED&x=1"
    assert redact_url("udp://239.1.1.1:1234") == "udp://239.1.1.1:1234"


def test_owner_sees_credentials_others_do_not() -> None:
    feed = VideoFeed(uid="a", alias="A", url="rtsp://u:p@h/x")
    c = VideoConnection(uid="a", alias="A", feeds=(feed,), groups=frozenset({"Red"}), owner="Alice", updated_ms=1)
    assert view_for(c, "alice").feeds[0].url == "rtsp://u:p@h/x"
    assert view_for(c, "bob").feeds[0].url == "rtsp://h/x"
    assert view_for(c, None).feeds[0].url == "rtsp://h/x"


def test_url_from_parts() -> None:
    assert url_from_parts("rtsp", "10.0.0.1", "8554", "live") == "rtsp://10.0.0.1:8554/live"
    assert url_from_parts("raw", "239.1.1.1", 1234, "") == "udp://239.1.1.1:1234"
    assert url_from_parts("srt", "h", "-1", "/x") == "srt://h/x"
    with pytest.raises(BadVideo, match="port"):
        url_from_parts("rtsp", "h", "abc", "")


def test_vcm_round_trip() -> None:
    feeds = parse_vcm(b"<?xml version='1.0'?><videoConnections><feed><uid>f1</uid><alias>Gate &amp; yard</alias>"
                      b"<protocol>rtsp</protocol><address>h</address><port>554</port><path>/g</path>"
                      b"<latitude>1.5</latitude><longitude>2.5</longitude></feed></videoConnections>")
    assert feeds == [VideoFeed(uid="f1", alias="Gate & yard", url="rtsp://h:554/g", latitude=1.5, longitude=2.5)]
    c = VideoConnection(uid="f1", alias="x", feeds=tuple(feeds), groups=frozenset({"A"}), owner=None, updated_ms=1)
    assert parse_vcm(render_vcm([c])) == [VideoFeed(uid="f1", alias="Gate & yard", url="rtsp://h:554/g",
                                                    latitude=1.5, longitude=2.5)]


@pytest.mark.parametrize("body", [
    b'<!DOCTYPE v [<!ENTITY a "b">]><videoConnections/>', b"<videoConnections><feed>", b"<other/>",
    b"<videoConnections/>", b"<?pi x?><videoConnections/>",
    b"<videoConnections><feed><uid>a</uid><url>ftp://h/x</url></feed></videoConnections>",
    b"<videoConnections>" + b"<a>" * 50 + b"</a>" * 50 + b"</videoConnections>",
])
def test_vcm_hostile_or_malformed(body: bytes) -> None:
    with pytest.raises(BadVideo):
        parse_vcm(body)


def test_biv_detail() -> None:
    entry = ('<ConnectionEntry protocol="rtsp" address="10.1.1.1" port="8554" path="/uas" alias="UAS 1" '
             'uid="x" networkTimeout="12000"/>')
    got = feed_from_cot(f"<__video>{entry}</__video>".encode(), uid="u1", callsign="CS", lat=1.0, lon=2.0)
    assert got == VideoFeed(uid="u1", alias="UAS 1", url="rtsp://10.1.1.1:8554/uas", latitude=1.0, longitude=2.0)
    # The url attribute wins; no fix (0,0) is no position; the callsign names it without an entry alias.
    got = feed_from_cot(b'<__video url="srt://h:8890"/>', uid="u2", callsign="CS", lat=0.0, lon=0.0)
    assert got == VideoFeed(uid="u2", alias="CS", url="srt://h:8890")
    for detail in (b"<contact callsign='x'/>", b"<__video/>", b'<__video url="file:///x"/>'):
        with pytest.raises(BadVideo):
            feed_from_cot(detail, uid="u", callsign=None, lat=0.0, lon=0.0)
