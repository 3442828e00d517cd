"""Meshtastic channel encryption: AES-CTR with the channel key (MQTT uplink/downlink), sans-IO.

A channel key (PSK) is 0, 1, 16 or 32 bytes. Empty means no encryption. One byte is a shorthand
for the well-known default key: ``1`` is the default key itself and ``2..255`` the default key with
its last byte increased by ``n - 1`` ("simple" keys). 16 bytes is AES-128, 32 bytes AES-256.
The 16-byte counter block is the packet id (64-bit little-endian), the sending node's number
(32-bit little-endian) and four zero bytes; CTR mode makes encryption and decryption the same
operation.
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# The published default channel key ("AQ==" in channel settings expands to it).
DEFAULT_KEY = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")


class ChannelKeyError(ValueError):
    """A channel key that is not 0, 1, 16 or 32 bytes of base64."""


def expand_key(psk: bytes) -> bytes:
    """The AES key a channel's PSK stands for (empty: no encryption)."""
    if len(psk) == 0:
        return b""
    if len(psk) == 1:
        index = psk[0]
        if index == 0:
            return b""
        return DEFAULT_KEY[:-1] + bytes([(DEFAULT_KEY[-1] + index - 1) & 0xFF])
    if len(psk) in (16, 32):
        return psk
    raise ChannelKeyError(f"a channel key is 1, 16 or 32 bytes (got {len(psk)})")


def key_from_base64(text: str) -> bytes:
    """The AES key of a base64 channel key as Meshtastic shows it (``AQ==``, 24 or 44 characters)."""
    try:
        raw = base64.b64decode(text.strip().replace(" ", "+").replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ChannelKeyError(f"channel key {text!r} is not base64") from None
    return expand_key(raw)


def crypt(key: bytes, packet_id: int, sender: int, data: bytes) -> bytes:
    """Encrypt or decrypt ``data`` of packet ``packet_id`` from node ``sender`` (same operation in CTR)."""
    if not key:
        return data
    nonce = struct.pack("<QI", packet_id & 0xFFFF_FFFF_FFFF_FFFF, sender & 0xFFFF_FFFF) + b"\x00" * 4
    ctx = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return ctx.update(data) + ctx.finalize()
