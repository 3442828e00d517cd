"""Cheap parameter binding for the embedded stores: identity adapters for ``None``, ``bytes`` and ``bool``.

CPython's ``sqlite3`` binds an exact ``int``, ``float``, ``str`` or ``bytearray`` directly; any other
value first goes through the adaptation protocol: a registry lookup, then ``__adapt__`` on the
protocol type and ``__conform__`` on the value. For ``None``, ``bytes`` and ``bool`` both lookups
fail, and the failing attribute lookup on a type object formats an ``AttributeError`` message that
is thrown away, with the GIL held. An event row binds at least three such values (its XML, its
picture flag, usually a NULL): binding and inserting one took 2.55 us, 1.83 us with the adapters
(bench/sqlite_binding.py), and rows with more NULLs save more.

Registering an adapter that gives the value back unchanged (``bool`` as the ``int`` SQLite stores
for it anyway) answers from the registry. What is stored does not change: ``None`` is still NULL,
``bytes`` a BLOB, ``True`` the integer 1. The registry belongs to the ``sqlite3`` module, so this is
process-wide; it is idempotent, and the adapters are identities, so no other ``sqlite3`` user in
the process sees a different value bound.
"""

from __future__ import annotations

import sqlite3


def _none(value: None) -> None:
    return value


def _blob(value: bytes) -> bytes:
    return value


def _as_int(value: bool) -> int:
    return 1 if value else 0


def register_identity_adapters() -> None:
    """Answer ``None``, ``bytes`` and ``bool`` from the adapter registry (see the module docstring).

    Leaves alone a type some other code already registered an adapter for.
    """
    registered = sqlite3.adapters
    if (type(None), sqlite3.PrepareProtocol) not in registered:
        sqlite3.register_adapter(type(None), _none)
    if (bytes, sqlite3.PrepareProtocol) not in registered:
        sqlite3.register_adapter(bytes, _blob)
    if (bool, sqlite3.PrepareProtocol) not in registered:
        sqlite3.register_adapter(bool, _as_int)
