"""Pre-encoded CoT events for the load tool.

Each client owns a template split around its send timestamp, so a send is one ``bytes.join``:
``head + b"%019d" % time_ns + tail``. The timestamp travels inside ``<remarks>`` as
``rpbench@<19 digits>``: servers forward remarks untouched, and in TAK Protocol v1 it stays
verbatim inside ``xmlDetail``, so receivers find it with one ``bytes.find`` whatever the wire format.

Event times (time/start/stale) only have millisecond precision and change once per refresh
(see ``TemplateSet.refresh``), which keeps templates valid for servers that drop stale events.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

STAMP_MARK = b"rpbench@"
STAMP_DIGITS = 19
STAMP_PLACEHOLDER = b"0" * STAMP_DIGITS
XML_END = b"</event>"
PROTO_MAGIC = 0xBF
STALE_AFTER_MS = 5 * 60 * 1000
WARMUP_REMARK = "rpbench warmup"


def cot_time(ms: int) -> str:
    """Format epoch milliseconds as a CoT timestamp (``2024-05-01T12:00:00.123Z``)."""
    secs, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:03d}Z"


def encode_varint(value: int) -> bytes:
    """Protobuf unsigned varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame_payload(payload: bytes) -> bytes:
    """Wrap one TakMessage payload in TAK streaming framing (``0xBF varint(len) payload``)."""
    return bytes([PROTO_MAGIC]) + encode_varint(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Static per-client values: uid, callsign and a position spread around a point."""

    index: int
    uid: str
    callsign: str
    lat: float
    lon: float
    course: float
    # The uid prefix shared by every client of the run (see run_uid_prefix).
    run_prefix: str = ""


def run_uid_prefix(run_id: str) -> str:
    """What every uid of run ``run_id`` starts with; receivers count only events carrying it."""
    return f"RPBENCH-{run_id}-"


def make_identity(index: int, run_id: str) -> ClientIdentity:
    """Identity for client ``index``; ``run_id`` keeps uids unique across concurrent runs."""
    return ClientIdentity(
        index=index,
        uid=f"{run_uid_prefix(run_id)}{index:06d}",
        callsign=f"bench-{index}",
        lat=38.0 + (index % 100) * 0.001,
        lon=-77.0 - (index // 100) * 0.001,
        course=float((index * 37) % 360),
        run_prefix=run_uid_prefix(run_id),
    )


def _xml_detail_extras(ident: ClientIdentity, remark: str) -> str:
    return f'<uid Droid="{ident.callsign}"/><remarks>{remark}</remarks>'


def xml_event(ident: ClientIdentity, now_ms: int, remark: str) -> bytes:
    """One ATAK-like self SA (PLI) as XML with ``remark`` in ``<remarks>``."""
    t = cot_time(now_ms)
    stale = cot_time(now_ms + STALE_AFTER_MS)
    return (
        f'<event version="2.0" uid="{ident.uid}" type="a-f-G-U-C" how="m-g" time="{t}" start="{t}" '
        f'stale="{stale}"><point lat="{ident.lat:.6f}" lon="{ident.lon:.6f}" hae="42.3" ce="9.9" '
        f'le="9999999.0"/><detail><takv os="34" version="5.2.0.4 (4f1c9a2e).1718000000-CIV" '
        f'device="SAMSUNG SM-S918B" platform="ATAK-CIV"/><contact endpoint="*:-1:stcp" '
        f'callsign="{ident.callsign}"/><precisionlocation altsrc="GPS" geopointsrc="GPS"/>'
        f'<__group role="Team Member" name="Cyan"/><status battery="87"/>'
        f'<track course="{ident.course:.1f}" speed="1.4"/>{_xml_detail_extras(ident, remark)}'
        f"</detail></event>"
    ).encode()


def load_takmessage_class() -> Any:
    """The generated ``TakMessage`` class: Rallypoint's own bindings, else ``takproto``'s."""
    candidates = ("rallypoint.protocol.pb.takmessage_pb2", "takproto.proto.takmessage_pb2")
    for name in candidates:
        try:
            module: ModuleType = importlib.import_module(name)
        except ImportError:
            continue
        return module.TakMessage
    raise RuntimeError("protobuf mode needs rallypoint.protocol.pb or the takproto package")


def proto_event(takmessage_cls: Any, ident: ClientIdentity, now_ms: int, remark: str) -> bytes:
    """The same self SA as a framed TAK Protocol v1 message."""
    msg = takmessage_cls()
    ev = msg.cotEvent
    ev.type = "a-f-G-U-C"
    ev.how = "m-g"
    ev.uid = ident.uid
    ev.sendTime = now_ms
    ev.startTime = now_ms
    ev.staleTime = now_ms + STALE_AFTER_MS
    ev.lat = ident.lat
    ev.lon = ident.lon
    ev.hae = 42.3
    ev.ce = 9.9
    ev.le = 9999999.0
    d = ev.detail
    d.xmlDetail = _xml_detail_extras(ident, remark)
    d.contact.endpoint = "*:-1:stcp"
    d.contact.callsign = ident.callsign
    d.group.name = "Cyan"
    d.group.role = "Team Member"
    d.precisionLocation.geopointsrc = "GPS"
    d.precisionLocation.altsrc = "GPS"
    d.status.battery = 87
    d.takv.device = "SAMSUNG SM-S918B"
    d.takv.platform = "ATAK-CIV"
    d.takv.os = "34"
    d.takv.version = "5.2.0.4 (4f1c9a2e).1718000000-CIV"
    d.track.speed = 1.4
    d.track.course = ident.course
    return frame_payload(msg.SerializeToString())


def split_template(encoded: bytes) -> tuple[bytes, bytes]:
    """Split an event encoded with the placeholder stamp into (head, tail) around the digits."""
    marker = STAMP_MARK + STAMP_PLACEHOLDER
    pos = encoded.find(marker)
    if pos < 0:
        raise ValueError("template lacks the stamp placeholder")
    cut = pos + len(STAMP_MARK)
    return encoded[:cut], encoded[cut + STAMP_DIGITS :]


class TemplateSet:
    """Per-client (head, tail) pairs for one wire format, refreshed as event times age."""

    def __init__(self, identities: list[ClientIdentity], proto: str) -> None:
        self._identities = identities
        self._proto = proto
        self._takmessage = load_takmessage_class() if proto != "xml" else None
        self.parts: dict[int, tuple[bytes, bytes]] = {}
        self.refreshed_ms = 0

    def encode(self, ident: ClientIdentity, now_ms: int, remark: str) -> bytes:
        """Encode one event for ``ident`` in this set's wire format."""
        if self._takmessage is not None:
            return proto_event(self._takmessage, ident, now_ms, remark)
        return xml_event(ident, now_ms, remark)

    def refresh(self, now_ms: int) -> None:
        """Re-encode every template with current event times."""
        remark = (STAMP_MARK + STAMP_PLACEHOLDER).decode()
        self.parts = {i.index: split_template(self.encode(i, now_ms, remark)) for i in self._identities}
        self.refreshed_ms = now_ms

    def warmup_event(self, ident: ClientIdentity, now_ms: int) -> bytes:
        """The unstamped SA each client sends once before measuring."""
        return self.encode(ident, now_ms, WARMUP_REMARK)


def stamp(parts: tuple[bytes, bytes], ns: int) -> bytes:
    """One ready-to-send event carrying send time ``ns``."""
    return b"%b%019d%b" % (parts[0], ns, parts[1])


def control_event(uid: str, cot_type: str, inner: str, now_ms: int) -> bytes:
    """A TAK control event (protocol negotiation) as XML."""
    t = cot_time(now_ms)
    stale = cot_time(now_ms + 60_000)
    return (
        f'<event version="2.0" uid="{uid}" type="{cot_type}" how="m-g" time="{t}" start="{t}" '
        f'stale="{stale}"><point lat="0.0" lon="0.0" hae="0.0" ce="999999" le="999999"/>'
        f"<detail><TakControl>{inner}</TakControl></detail></event>"
    ).encode()
