"""Validation failures in Rallypoint's words, not the decoding library's.

``msgspec`` reports ``Invalid enum value 'pdf' - at `$.format``` or ``Expected `int`, got `str` -
at `$.tls_port```. People setting an option or calling the API should read what is allowed
instead: ``format must be one of: cot, geojson, kml`` or ``tls_port must be a whole number (got
'abc')``. :func:`describe` rewrites a ``msgspec.ValidationError`` that way, looking the failing
field up in the target type to list its allowed values and limits. Foundational: imports no layer.
"""

from __future__ import annotations

import enum
import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

T = TypeVar("T")

_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_EXPECTED = re.compile(r"^Expected `(?P<kind>[^`]+)`(?:, got `(?P<got>[^`]+)`)?$")
_LENGTH = re.compile(r"^Expected `(?P<kind>[^`]+)` of length (?P<op>[<>]=?) (?P<n>\d+)$")
_BOUND = re.compile(r"^Expected `(?P<kind>int|float)` (?P<op>[<>]=?) (?P<n>-?[\d.e+-]+)$")
_PATTERN = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$", re.DOTALL)
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
# Where msgspec says a JSON document broke ("... (byte 12)"), to point the caller at it.
_BYTE = re.compile(r"\(byte (\d+)\)")

_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "int | null": "a whole number or null",
    "float | null": "a number or null",
    "str | null": "text or null",
    "bool | null": "true or false, or null",
    "array | null": "a list or null",
    "object | null": "an object or null",
}
_OPS = {"<=": "at most", ">=": "at least", "<": "less than", ">": "greater than"}


class InvalidJson(ValueError):
    """A JSON document refused by :func:`decode_json`; ``malformed`` when it is not JSON at all."""

    def __init__(self, detail: str, *, malformed: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.malformed = malformed


def decode_json(raw: bytes, target: type[T], *, subject: str = "the body") -> T:
    """``raw`` decoded strictly into ``target``; :class:`InvalidJson` in our words otherwise.

    Broken JSON is told with the byte where it broke; valid JSON of the wrong shape names the
    field and what it accepts (see :func:`describe`), ``subject`` naming the whole document.
    """
    try:
        return _decode(raw, target, subject)
    except RecursionError as exc:
        # msgspec recurses per nesting level; a body nested thousands deep is hostile, not a server fault.
        raise InvalidJson(f"{subject} is nested too deeply", malformed=True) from exc


def _decode(raw: bytes, target: type[T], subject: str) -> T:
    try:
        return msgspec.json.decode(raw, type=target)
    except msgspec.ValidationError as exc:
        # The typed decoder stops at the first value of the wrong type, before reading the rest:
        # decoding untyped tells broken JSON apart and gives the offending value to quote.
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError as broken:
            raise _malformed(broken, subject) from broken
        raise InvalidJson(describe(exc, target, value, subject=subject), malformed=False) from exc
    except msgspec.DecodeError as exc:
        raise _malformed(exc, subject) from exc


def _malformed(exc: msgspec.DecodeError, subject: str) -> InvalidJson:
    where = _BYTE.search(str(exc))
    return InvalidJson(f"{subject} is not valid JSON" + (f" (error at byte {where[1]})" if where else ""),
                       malformed=True)


def describe(exc: msgspec.ValidationError, target: Any = None, value: Any = None, *, subject: str = "value") -> str:
    """``exc`` as a sentence naming the field and what it accepts.

    ``target`` is the type that was decoded (to list allowed values of enum and literal fields),
    ``value`` the input when it is at hand (to quote what was given), ``subject`` names the whole
    input when the error is not about one field (``"the body"``, ``"the configuration"``).
    """
    match = _AT.match(str(exc))
    assert match is not None  # the pattern accepts any text
    what, path = match["what"].strip(), match["path"] or "$"
    parts = _path_parts(path)
    field = _field_name(parts)
    if field.startswith("["):  # an element of a top-level list: "the body[0].name"
        field = subject + field
    name = field or subject
    inside = f"{field}." if field else ""

    if m := _MISSING.match(what):
        return f"{inside}{m['name']} is required"
    if m := _UNKNOWN.match(what):
        return f"{inside}{m['name']} is not a known field"
    choices = _choices(target, parts)
    given = _given(value, parts)
    got = f" (got {given!r})" if given is not _ABSENT and _is_scalar(given) else ""
    if m := _ENUM.match(what):
        shown = f" (got {m['value']})"
        if choices:
            return f"{name} must be one of: {', '.join(choices)}{shown}"
        return f"{name} is not an allowed value{shown}"
    if choices and (_EXPECTED.match(what) or what.startswith("Invalid")):
        return f"{name} must be one of: {', '.join(choices)}{got}"
    if m := _LENGTH.match(what):
        unit = "characters" if m["kind"] == "str" else "items"
        return f"{name} must be {_OPS[m['op']]} {m['n']} {unit}{got}"
    if m := _BOUND.match(what):
        return f"{name} must be {_OPS[m['op']]} {m['n']}{got}"
    if m := _PATTERN.match(what):
        return f"{name} is not in the expected form (pattern {m['pattern']}){got}"
    if m := _EXPECTED.match(what):
        kind = _KINDS.get(m["kind"], m["kind"].replace("`", ""))
        return f"{name} must be {kind}{got}"
    return f"{name}: {what.replace('`', '')}"


class _Absent:
    pass


_ABSENT = _Absent()


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for m in _PATH_PART.finditer(path.removeprefix("$")):
        parts.append(m[1] if m[1] is not None else int(m[2]))
    return parts


def _field_name(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _given(value: Any, parts: list[str | int]) -> Any:
    for part in parts:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return value


def _choices(target: Any, parts: list[str | int]) -> list[str]:
    """Allowed values of the field at ``parts`` in ``target``, if it is an enum or literal."""
    if target is None:
        return []
    try:
        info: mi.Type = mi.type_info(target)
    except (TypeError, ValueError):
        return []
    for part in parts:
        info = _unwrap(info)
        match info:
            case mi.StructType() | mi.DataclassType() | mi.TypedDictType():
                found = [f.type for f in info.fields if part in (f.name, f.encode_name)]
                if not found:
                    return []
                info = found[0]
            case mi.ListType() | mi.SetType() | mi.FrozenSetType() | mi.VarTupleType():
                info = info.item_type
            case mi.DictType():
                info = info.value_type
            case _:
                return []
    return _values(_unwrap(info))


def _unwrap(info: mi.Type) -> mi.Type:
    while True:
        match info:
            case mi.Metadata():
                info = info.type
            case mi.UnionType():
                members = [t for t in info.types if not isinstance(t, mi.NoneType)]
                if len(members) != 1:
                    return info
                info = members[0]
            case _:
                return info


def _values(info: mi.Type) -> list[str]:
    match info:
        case mi.EnumType():
            return [str(m.value) for m in info.cls] if issubclass(info.cls, enum.Enum) else []
        case mi.LiteralType():
            return [str(v) for v in info.values]
        case _:
            return []
