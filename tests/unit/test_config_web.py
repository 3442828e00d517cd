"""``[web] tile_url``: read from TOML, the environment and flags; its origin checked once, at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.config import load_settings, tile_origin
from rallypoint.errors import ConfigError
from rallypoint.web.guard import CONTENT_SECURITY_POLICY, content_security_policy


def test_tile_url_from_a_top_level_or_nested_web_table(tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text('[web]\ntile_url = "https://tiles.example:8443/{z}/{x}/{y}.png"\n')
    assert load_settings(flat, environ={}).web.tile_url == "https://tiles.example:8443/{z}/{x}/{y}.png"
    nested = tmp_path / "nested.toml"
    nested.write_text('[rallypoint]\nhttp_port = 8080\n[rallypoint.web]\ntile_url = "http://10.0.0.5/{z}/{x}/{y}"\n')
    assert load_settings(nested, environ={}).web.tile_url == "http://10.0.0.5/{z}/{x}/{y}"


def test_tile_url_from_the_environment_and_flags() -> None:
    env = {"RALLYPOINT_WEB": '{"tile_url": "https://a.example/{z}/{x}/{y}.png"}'}
    assert load_settings(environ=env).web.tile_url == "https://a.example/{z}/{x}/{y}.png"
    flag = {"web": {"tile_url": "https://b.example/{z}/{x}/{y}.png"}}
    assert load_settings(environ=env, overrides=flag).web.tile_url == "https://b.example/{z}/{x}/{y}.png"
    assert load_settings(environ={}).web.tile_url == ""


@pytest.mark.parametrize(("template", "origin"), [
    ("https://Tiles.Example/{z}/{x}/{y}.png", "https://tiles.example"),
    ("http://127.0.0.1:8000/{z}/{y}/{x}", "http://127.0.0.1:8000"),
    ("http://[::1]:9000/t/{z}/{x}/{y}.webp?key=abc", "http://[::1]:9000"),
    ("", None),
])
def test_the_origin_of_a_template(template: str, origin: str | None) -> None:
    assert tile_origin(template) == origin


@pytest.mark.parametrize("template", [
    "tiles.example/{z}/{x}/{y}.png", "javascript:alert(1)//{z}{x}{y}", "https://tiles.example/{z}/{y}.png",
    "https://u@tiles.example/{z}/{x}/{y}", "https://tiles.example/{z}/{x}/{y} 'unsafe-eval'",
    "https://*.example/{z}/{x}/{y}", "https://tiles.example/{z}/{x}/{y};", "https://tiles.example/{z}/{x}/{y}\n",
])
def test_templates_that_are_refused(template: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.tile_url"):
        tile_origin(template)
    with pytest.raises(ConfigError, match=r"web\.tile_url"):
        load_settings(environ={}, overrides={"web": {"tile_url": template}})


def test_the_policy_names_the_origin_for_images_and_connections_only() -> None:
    assert content_security_policy(None) == CONTENT_SECURITY_POLICY
    policy = content_security_policy("https://tiles.example")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert [n for n, sources in directives.items() if "https://tiles.example" in sources] == ["img-src", "connect-src"]
    assert {n: s for n, s in directives.items() if n not in ("img-src", "connect-src")} == {
        d.split()[0]: d.split()[1:] for d in CONTENT_SECURITY_POLICY.split("; ") if d.split()[0] not in (
            "img-src", "connect-src")}
