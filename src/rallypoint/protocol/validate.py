"""Field checks shared by the XML and protobuf decoders, so both accept exactly the same events."""

from __future__ import annotations

import math
import re

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import UNKNOWN_ERROR, Detail, Point
from rallypoint.model.exercise import BadExercise, exercise_id
from rallypoint.protocol.limits import Limits

DEFAULT_HOW = "h-g-i-g-o"

# MITRE base schema: type ``\w+(-\w+)*(;[^;]*)?``, how ``\w(-\w+)*`` (relaxed to ``\w+`` per part:
# real clients send multi-letter first parts).
_TYPE_RE = re.compile(r"\w+(?:-\w+)*(?:;[^;]*)?")
_HOW_RE = re.compile(r"\w+(?:-\w+)*")
# Characters XML 1.0 cannot carry at all (lone surrogates cannot even be encoded as UTF-8); only
# binary (protobuf) input and HTTP parameters can contain them. Escapes read by re, not by the
# compiler: the source holds no lone surrogate (which the mypyc build in bench/blast_floor.py refuses).
_XML_INVALID_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_xml_text(value: str) -> bool:
    """True when every character of ``value`` can travel inside a CoT XML event."""
    return _XML_INVALID_RE.search(value) is None


def check_uid(uid: str | None, limits: Limits) -> str:
    """A non-empty uid within the length limit."""
    if not uid or not uid.strip():
        raise RemoteProtocolError("missing_uid")
    if len(uid) > limits.max_uid_length:
        raise RemoteProtocolError("uid_too_long", f"{len(uid)} > {limits.max_uid_length}")
    return uid


def check_type(cot_type: str | None, limits: Limits) -> str:
    """A CoT type matching the base schema pattern."""
    if not cot_type or len(cot_type) > limits.max_type_length or _TYPE_RE.fullmatch(cot_type) is None:
        raise RemoteProtocolError("bad_type", (cot_type or "")[:64])
    return cot_type


def check_how(how: str | None, limits: Limits) -> str:
    """The ``how`` code; a missing or empty one reads as ``h-g-i-g-o`` (TAK's "unknown")."""
    if not how:
        return DEFAULT_HOW
    if len(how) > limits.max_how_length or _HOW_RE.fullmatch(how) is None:
        raise RemoteProtocolError("bad_how", how[:64])
    return how


def check_text(value: str, what: str, limits: Limits) -> str:
    """A free string from binary input: bounded and representable in XML."""
    if len(value) > limits.max_attr_length:
        raise RemoteProtocolError("attr_too_long", what)
    if _XML_INVALID_RE.search(value) is not None:
        raise RemoteProtocolError("bad_chars", what)
    return value


def check_exercise(opex: str | None, detail: Detail) -> None:
    """Exercise marking (``opex="e-..."``, ``<__rallypoint_exercise>``) well formed and consistent.

    A malformed marker rejects the event rather than letting it pass as live traffic.
    """
    if opex is None and detail.exercise is None:
        return
    try:
        exercise_id(opex, detail.exercise)
    except BadExercise as exc:
        raise RemoteProtocolError("bad_exercise", str(exc)) from None


def check_point(lat: float, lon: float, hae: float, ce: float, le: float) -> Point:
    """A finite WGS-84 point inside the valid latitude/longitude ranges."""
    if not (
        math.isfinite(lat)
        and math.isfinite(lon)
        and math.isfinite(hae)
        and math.isfinite(ce)
        and math.isfinite(le)
    ):
        raise RemoteProtocolError("not_finite", f"{lat},{lon},{hae},{ce},{le}")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise RemoteProtocolError("bad_point", f"lat={lat} lon={lon}")
    return Point(lat, lon, hae, ce, le)


def parse_number(text: str | None, name: str, *, required: bool) -> float:
    """A ``<point>`` attribute as float; optional error/height attributes default to "unknown"."""
    if text is None:
        if required:
            raise RemoteProtocolError("bad_point", f"missing {name}")
        return UNKNOWN_ERROR
    try:
        return float(text)
    except ValueError:
        raise RemoteProtocolError("bad_point", f"{name}={text[:32]!r}") from None
