"""Validation failures are told in our words: the field, what it accepts, what was given."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pytest
from typer.testing import CliRunner

from rallypoint.cli.history import history_app
from rallypoint.cli.users import user_app
from rallypoint.cli.wording import plain_words
from rallypoint.config import load_settings
from rallypoint.errors import ConfigError
from rallypoint.validation_errors import InvalidJson, decode_json, describe


class Fmt(enum.StrEnum):
    cot = "cot"
    geojson = "geojson"
    kml = "kml"


class Item(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["pin", "route"]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=5)]
    format: Fmt = Fmt.cot
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 1
    items: list[Item] = []


def _describe(value: object) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(value, Body)
    return describe(info.value, Body, value, subject="the body")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"name": "a", "format": "pdf"}, "format must be one of: cot, geojson, kml (got 'pdf')"),
        ({"name": "abcdefgh"}, "name must be at most 5 characters (got 'abcdefgh')"),
        ({}, "name is required"),
        ({"name": "a", "port": "x"}, "port must be a whole number (got 'x')"),
        ({"name": "a", "port": 70000}, "port must be at most 65535 (got 70000)"),
        ({"name": "a", "items": [{"kind": "box"}]}, "items[0].kind must be one of: pin, route (got 'box')"),
        ({"name": "a", "colour": "red"}, "colour is not a known field"),
        ([1, 2], "the body must be an object"),
    ],
)
def test_describe(value: object, text: str) -> None:
    message = _describe(value)
    assert message == text
    assert "`" not in message and "Expected" not in message and "$." not in message


def test_configuration_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, overrides={"tls_port": "abc"}, environ={})
    assert str(info.value) == "invalid setting: tls_port must be a whole number (got 'abc')"
    with pytest.raises(ConfigError, match=r"log_format must be one of: json, text \(got 'xml'\)"):
        load_settings(None, overrides={"log_format": "xml"}, environ={})


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("Value error, 'pdf' is not one of 'cot', 'geojson', 'kml'.", "must be one of: cot, geojson, kml (got 'pdf')"),
        ("Input should be a valid integer, unable to parse string as an integer", "must be a whole number"),
        ("Input should be greater than or equal to 1", "must be at least 1"),
        ("something we say ourselves", "something we say ourselves"),
    ],
)
def test_plain_words(message: str, text: str) -> None:
    assert plain_words(message) == text


def test_cli_option_errors_say_what_is_allowed(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_format = runner.invoke(history_app, ["query", "--data-dir", str(tmp_path), "--format", "pdf"],
                               env={"COLUMNS": "400"})  # fmt: skip
    assert bad_format.exit_code == 2
    assert "--format" in bad_format.stderr
    assert "must be one of: table, csv, json, cot, geojson, kml (got 'pdf')" in bad_format.stderr
    assert "Value error" not in bad_format.stderr

    bad_limit = runner.invoke(history_app, ["query", "--limit", "many"], env={"COLUMNS": "400"})
    assert bad_limit.exit_code == 2 and "must be a whole number" in bad_limit.stderr
    assert "Input should be" not in bad_limit.stderr

    bad_role = runner.invoke(user_app, ["add", "bob", "--role", "boss", "--data-dir", str(tmp_path)],
                             env={"COLUMNS": "400"})  # fmt: skip
    assert bad_role.exit_code == 2
    assert "must be one of: member, approver, admin (got 'boss')" in bad_role.stderr


@pytest.mark.parametrize(
    ("raw", "text", "malformed"),
    [
        (b'[{"kind": "box"}]', "the body[0].kind must be one of: pin, route (got 'box')", False),
        (b"[{}]", "the body[0].kind is required", False),
        (b'{"kind": "pin"}', "the body must be a list", False),
        (b'[{"kind": pin}]', "the body is not valid JSON (error at byte 10)", True),
        (b'[{"kind": "pin"', "the body is not valid JSON", True),
        # The wrong type comes first, yet the document is not JSON at all.
        (b"{not json", "the body is not valid JSON (error at byte 1)", True),
    ],
)
def test_decode_json(raw: bytes, text: str, malformed: bool) -> None:
    with pytest.raises(InvalidJson) as info:
        decode_json(raw, list[Item])
    assert (info.value.detail, info.value.malformed) == (text, malformed)
    assert decode_json(b'[{"kind": "pin"}]', list[Item]) == [Item("pin")]


def test_a_body_nested_thousands_deep_is_refused_in_our_words() -> None:
    class Body(msgspec.Struct):
        items: list[int]

    for raw in (b'{"items":' + b"[" * 20000 + b"]" * 20000 + b"}", b"[" * 20000 + b"]" * 20000):
        with pytest.raises(InvalidJson, match="nested too deeply"):
            decode_json(raw, Body)
