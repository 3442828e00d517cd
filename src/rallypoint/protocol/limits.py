"""Size and shape limits applied to everything a peer sends."""

from __future__ import annotations

import msgspec


class Limits(msgspec.Struct, frozen=True):
    """Caps enforced by the framers and codecs.

    ``max_event_bytes`` bounds one framed event (XML ``<event>`` or protobuf payload);
    ``max_buffer_bytes`` bounds what a framer may hold between drains (a caller that feeds more
    than this without calling ``next_frame`` gets a fatal ``LimitExceeded``);
    ``max_skip_bytes`` is the largest oversized protobuf frame that is skipped by its declared
    length: a larger length prefix is treated as garbage and the stream is rescanned for 0xBF.
    """

    max_event_bytes: int = 256 * 1024
    max_depth: int = 32
    max_buffer_bytes: int = 1024 * 1024
    max_uid_length: int = 512
    max_type_length: int = 256
    max_how_length: int = 64
    max_attr_length: int = 4096
    max_skip_bytes: int = 16 * 1024 * 1024
