"""Tamper-evident audit log: an append-only list of entries, each hashing the one before it.

``hash = sha256(DOMAIN + canonical JSON of [seq, ts_ms, actor, action, target, detail, prev_hash])``
where ``detail`` is encoded with sorted keys, and the first entry's ``prev_hash`` is 64 zeros.
Editing an entry breaks its hash; removing or reordering entries breaks ``seq`` continuity and the
``prev_hash`` links; cutting the tail off is caught by the anchor file written on every append.
An attacker able to rewrite the whole file and the anchor consistently is out of reach of any
unkeyed chain; copy the anchor (or ``verify`` output) somewhere else to close that gap.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import msgspec

from rallypoint.errors import StorageError
from rallypoint.storage.base.audit import AuditRecords, AuditRow

GENESIS_HASH = "0" * 64
_DOMAIN = b"rallypoint-audit-v1\n"
_ACTION = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_*-]+)*")
_MAX_TEXT = 256
_MAX_DETAIL_VALUE = 1024
_MAX_DETAIL_KEYS = 32
_PAGE = 1000
# Control, format (bidi overrides), separator and surrogate characters: escaped so a recorded value
# cannot forge lines or reorder text when the log is printed, and always encodes as UTF-8.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class AuditEntry(msgspec.Struct, frozen=True):
    """One audited action. ``action`` is dotted: ``user.add``, ``cert.issue``, ``login.failed``, ..."""

    seq: int
    ts_ms: int
    actor: str
    action: str
    target: str
    detail: dict[str, str]
    prev_hash: str
    hash: str


class AuditVerification(msgspec.Struct, frozen=True):
    """Result of ``AuditLog.verify``: ``ok`` when ``problems`` is empty."""

    ok: bool
    checked: int
    problems: list[str]


def entry_hash(
    seq: int, ts_ms: int, actor: str, action: str, target: str, detail: dict[str, str], prev_hash: str
) -> str:
    """The hex SHA-256 an entry with these fields must carry."""
    canonical = msgspec.json.encode([seq, ts_ms, actor, action, target, detail, prev_hash], order="sorted")
    return hashlib.sha256(_DOMAIN + canonical).hexdigest()


def safe_text(value: str, limit: int = _MAX_TEXT) -> str:
    """``value`` as it is recorded: unsafe characters escaped (``\\u202e``), cut to ``limit`` characters.

    Actors and targets often come from the network (uids, user names, query parameters), so an
    over-long or hostile value is recorded in a bounded, printable form instead of being refused:
    refusing would lose the record of exactly the request worth auditing. A cut value ends with
    ``...(+N)``, N being the number of characters left out.
    """
    if not isinstance(value, str):
        raise TypeError(f"audit text must be a string, not {type(value).__name__}")
    if not value.isascii() or not value.isprintable():
        value = "".join(
            f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in value
        )
    if len(value) <= limit:
        return value
    # Sized for the longest possible count, so value and marker together never exceed the limit.
    cut = limit - len(f"...(+{len(value)})")
    return value[:cut] + f"...(+{len(value) - cut})"


class AuditLog:
    """The audit log. Appends are serialised by the backend, so concurrent appends chain correctly."""

    def __init__(self, records: AuditRecords) -> None:
        self._records = records

    async def append(
        self, actor: str, action: str, target: str, detail: dict[str, str] | None = None, *, now_ms: int
    ) -> AuditEntry:
        """Record one action and return the entry as stored.

        ``actor``, ``target`` and detail values are recorded through :func:`safe_text`; a malformed
        ``action`` or a non-string detail value is a programming error and raises ``ValueError``.
        """
        actor, target = safe_text(actor), safe_text(target)
        if not isinstance(action, str) or len(action) > 64 or not _ACTION.fullmatch(action):
            raise ValueError(f"audit action {action!r} must be dotted lower-case words, e.g. 'user.add'")
        clean = _safe_detail(msgspec.convert(detail or {}, type=dict[str, str]))
        detail_text = msgspec.json.encode(clean, order="sorted").decode()

        def build(last_seq: int, last_hash: str | None) -> AuditRow:
            seq, prev = last_seq + 1, last_hash or GENESIS_HASH
            digest = entry_hash(seq, now_ms, actor, action, target, clean, prev)
            return AuditRow(seq, now_ms, actor, action, target, detail_text, prev, digest)

        return _entry(await self._records.append(build))

    async def entries(self, since_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries with ``seq > since_seq`` in order, at most ``limit``."""
        return [_entry(row) for row in await self._records.rows(since_seq=since_seq, limit=limit)]

    async def verify(self) -> AuditVerification:
        """Walk the whole chain and report every inconsistency found."""
        problems: list[str] = []
        try:
            anchor = await self._records.read_anchor()
        except StorageError as exc:
            problems.append(f"anchor unreadable: {exc}")
            anchor = None
        checked = 0
        expected_seq = 1
        prev_hash = GENESIS_HASH
        last_seq = 0
        anchor_seen = False
        while True:
            rows = await self._records.rows(since_seq=last_seq, limit=_PAGE)
            for row in rows:
                checked += 1
                problems.extend(_check_row(row, expected_seq, prev_hash))
                if anchor is not None and row.seq == anchor.seq:
                    anchor_seen = True
                    if row.hash != anchor.hash:
                        problems.append(f"seq {row.seq}: hash differs from the anchor (entry replaced)")
                expected_seq = row.seq + 1
                prev_hash = row.hash
                last_seq = row.seq
            if len(rows) < _PAGE:
                break
        if anchor is not None and not anchor_seen:
            if anchor.seq > last_seq:
                problems.append(
                    f"log ends at seq {last_seq} but the anchor records seq {anchor.seq} (entries removed from the end)"
                )
            elif anchor.seq > 0:
                problems.append(f"seq {anchor.seq} recorded by the anchor is missing")
        return AuditVerification(ok=not problems, checked=checked, problems=problems)

    async def close(self) -> None:
        """Close the backend."""
        await self._records.close()


def _safe_detail(detail: dict[str, str]) -> dict[str, str]:
    items = sorted(detail.items())
    clean = {safe_text(k, 64): safe_text(v, _MAX_DETAIL_VALUE) for k, v in items[:_MAX_DETAIL_KEYS]}
    if len(items) > _MAX_DETAIL_KEYS:
        clean["_omitted"] = str(len(items) - _MAX_DETAIL_KEYS)
    return clean


def _check_row(row: AuditRow, expected_seq: int, prev_hash: str) -> list[str]:
    problems: list[str] = []
    if row.seq > expected_seq:
        missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
        problems.append(f"seq {missing} missing (entries removed)")
    elif row.seq < expected_seq:
        problems.append(f"seq {row.seq} out of order")
    if row.prev_hash != prev_hash:
        problems.append(f"seq {row.seq}: prev_hash does not match the previous entry (removed or reordered entries)")
    try:
        detail = msgspec.json.decode(row.detail, type=dict[str, str])
    except msgspec.DecodeError:
        problems.append(f"seq {row.seq}: detail is not valid JSON (entry altered)")
        return problems
    digest = entry_hash(row.seq, row.ts_ms, row.actor, row.action, row.target, detail, row.prev_hash)
    if digest != row.hash:
        problems.append(f"seq {row.seq}: hash mismatch (entry altered)")
    return problems


def _entry(row: AuditRow) -> AuditEntry:
    try:
        detail = msgspec.json.decode(row.detail, type=dict[str, str])
    except msgspec.DecodeError:
        # Listing must still show a damaged entry; verify() is what reports it.
        detail = {"_raw": row.detail}
    return AuditEntry(row.seq, row.ts_ms, row.actor, row.action, row.target, detail, row.prev_hash, row.hash)
