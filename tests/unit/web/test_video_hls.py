"""The HLS relay's checks, without sockets: playlist rewriting and what passes as a segment."""

from __future__ import annotations

import pytest

from rallypoint.web.api.video_hls import HlsRefused, rewrite_playlist, segment_type

URL = "http://media:8888/cam/index.m3u8?token=t"


def test_uris_of_the_playlists_directory_become_bare_names_and_others_stay() -> None:
    playlist = (
        "\ufeff#EXTM3U\n#EXT-X-VERSION:7\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:1.0,\nseg1.mp4\n"
        "#EXTINF:1.0,\nhttp://media:8888/cam/seg2.mp4?_HLS_part=1\n"
        "#EXTINF:1.0,\nhttp://user:pw@media:8888/cam/seg3.mp4\n"
        "#EXTINF:1.0,\nhttp://elsewhere/cam/seg4.mp4\n"
        "#EXTINF:1.0,\n../other/seg5.mp4\n"
        "#EXTINF:1.0,\nsub/seg6.mp4\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"\n'
    ).encode()
    out = rewrite_playlist(playlist, URL, "media:8888", "/cam").decode().splitlines()
    assert out[0] == "#EXTM3U"
    assert '#EXT-X-MAP:URI="init.mp4"' in out
    assert "seg1.mp4" in out and "seg2.mp4?_HLS_part=1" in out and "seg3.mp4" in out
    # Elsewhere (another host, another directory): left as is, the page's policy blocks them.
    assert "http://elsewhere/cam/seg4.mp4" in out and "../other/seg5.mp4" in out and "sub/seg6.mp4" in out
    assert '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"' in out


@pytest.mark.parametrize("body", [b"<html>login</html>", b"user=admin\n", b"\xff\xfe#EXTM3U", b""])
def test_what_is_not_a_playlist_is_refused(body: bytes) -> None:
    with pytest.raises(HlsRefused):
        rewrite_playlist(body, URL, "media:8888", "/cam")


TS = b"\x47" + bytes(187)
MP4 = b"\x00\x00\x00\x18ftypiso6" + bytes(16)


@pytest.mark.parametrize(("name", "ctype", "body", "answer"), [
    ("seg1.ts", "video/mp2t", TS, "video/mp2t"),
    ("seg1.ts", "", TS, "video/mp2t"),  # no type given: the bytes decide
    ("seg1.ts", "application/octet-stream", TS, "video/mp2t"),
    ("init.mp4", "video/mp4", MP4, "video/mp4"),
    ("part.m4s", "video/iso.segment", b"\x00\x00\x00\x10styp" + bytes(8), "video/iso.segment"),
    ("a.aac", "audio/aac", b"\xff\xf1\x50\x80", "audio/aac"),
    ("subs.vtt", "text/vtt; charset=utf-8", b"WEBVTT\n\n", "text/vtt"),
])
def test_segments_that_are_what_their_name_says_pass(name: str, ctype: str, body: bytes, answer: str) -> None:
    assert segment_type(name, ctype, body) == answer


@pytest.mark.parametrize(("name", "ctype", "body"), [
    ("seg1.ts", "text/html", TS),                 # the server says it is a page
    ("seg1.ts", "application/json", TS),
    ("seg1.ts", "video/mp2t", b"<html>"),         # the bytes are not MPEG-TS
    ("init.mp4", "video/mp4", b"GIF89a" + bytes(10)),
    ("stream.key", "application/octet-stream", bytes(16)),
    ("page.html", "text/html", b"<html>"),
    ("noextension", "video/mp2t", TS),
])
def test_anything_else_is_refused(name: str, ctype: str, body: bytes) -> None:
    with pytest.raises(HlsRefused):
        segment_type(name, ctype, body)
