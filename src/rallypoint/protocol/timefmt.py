"""xs:dateTime <-> epoch milliseconds, as CoT carries them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rallypoint.errors import LocalProtocolError, RemoteProtocolError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# 9999-12-31T23:59:59.999Z: the last instant an xs:dateTime with a four-digit year can name.
MAX_TIME_MS = 253_402_300_799_999


def parse_time(text: str) -> int:
    """Epoch ms for any xs:dateTime form: ``Z``, ``+hh:mm`` offsets, any fraction length, none.

    A value without a zone is taken as UTC. Years before 1970 or after 9999 are rejected.
    """
    s = text.strip()
    # fromisoformat also takes dates without a time, week dates and a space separator:
    # pin the xs:dateTime shape before handing over.
    # One slice compares the separators at 4, 7, 10, 13 and 16.
    if len(s) < 19 or s[4:17:3] != "--T::":
        raise RemoteProtocolError("bad_time", text[:64])
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise RemoteProtocolError("bad_time", text[:64]) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        ms = (dt - _EPOCH) // _ONE_MS
    except OverflowError:
        raise RemoteProtocolError("bad_time", text[:64]) from None
    if not 0 <= ms <= MAX_TIME_MS:
        raise RemoteProtocolError("bad_time", text[:64])
    return ms


def format_time(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for epoch ms (the form ATAK writes)."""
    if not 0 <= ms <= MAX_TIME_MS:
        raise LocalProtocolError(f"time out of range: {ms}")
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )


def check_time_ms(ms: int) -> int:
    """Validate an epoch-ms time received in binary form (protobuf)."""
    if not 0 <= ms <= MAX_TIME_MS:
        raise RemoteProtocolError("bad_time", str(ms))
    return ms
