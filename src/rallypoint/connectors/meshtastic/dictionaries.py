"""The ATAK plugin's ``TAKPacketV2`` zstd dictionaries, shipped with the gateway, and which one a packet uses.

A V2 payload's flags byte names its dictionary (bits 0-5): ``0`` the non-aircraft dictionary
(positions, chats, markers, shapes, routes, ranging lines...), ``1`` the aircraft dictionary
(CoT types whose third atom is ``A``); ``0xFF`` says the protobuf follows uncompressed. The two
dictionaries are the ones the Meshtastic clients embed, copied unchanged from the Meshtastic
TAKPacket-SDK (GPL-3.0-or-later; source, commit and checksums in ``dictionaries/SOURCE.md`` and
docs/meshtastic.md). A dictionary file missing from an installation is left out: packets that
would use it are then sent uncompressed (``0xFF``), which every V2 reader accepts.
"""

from __future__ import annotations

import logging
from importlib import resources

import zstandard

log = logging.getLogger(__name__)

NON_AIRCRAFT = 0
AIRCRAFT = 1
UNCOMPRESSED = 0xFF  # flags byte of a payload that is the bare protobuf
_FILES = {NON_AIRCRAFT: "dict_non_aircraft.zstd", AIRCRAFT: "dict_aircraft.zstd"}


def bundled() -> dict[int, bytes]:
    """The shipped dictionaries by id (those whose file is present)."""
    found: dict[int, bytes] = {}
    folder = resources.files("rallypoint.connectors.meshtastic").joinpath("dictionaries")
    for dict_id, name in _FILES.items():
        try:
            found[dict_id] = folder.joinpath(name).read_bytes()
        except OSError:
            log.warning("meshtastic V2 dictionary missing", extra={"dictionary": name})
    return found


def dict_id_for(cot_type: str) -> int:
    """The dictionary a packet of ``cot_type`` is compressed with: aircraft when the third atom is ``A``."""
    atoms = cot_type.split("-")
    return AIRCRAFT if len(atoms) > 2 and atoms[2] == "A" else NON_AIRCRAFT


def usable_dictionary(data: bytes) -> bool:
    """Whether zstd compresses and decompresses with ``data`` as a dictionary (a damaged trained
    dictionary fails only when used, so it is tried once when configured)."""
    try:
        zdict = zstandard.ZstdCompressionDict(data)
        frame = zstandard.ZstdCompressor(level=19, dict_data=zdict).compress(b"a-f-G-U-C")
        return bool(zstandard.ZstdDecompressor(dict_data=zdict).stream_reader(frame).read(64) == b"a-f-G-U-C")
    except zstandard.ZstdError:
        return False
