"""Hardened lxml parsing: no DTDs, no entities, no network, bounded size and depth."""

from __future__ import annotations

from lxml import etree

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.protocol.limits import Limits

_XML_DECL = b"<?xml"
_BOM = b"\xef\xbb\xbf"
# libxml2 error codes worth their own reason.
_ERR_UNDECLARED_ENTITY = frozenset({26, 27})
# Searched for as integers: ``b"!" in body`` first tries the argument as an integer and raises and
# clears a TypeError inside, which costs twice a search; an integer goes straight to memchr.
_BANG = ord("!")
_QUESTION = ord("?")


def new_parser() -> etree.XMLParser:
    """A fresh hardened parser.

    A parser may be reused for any number of documents (that saves a quarter of the parse
    cost), but never from two threads at once: keep one per connection or decoder.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        encoding="utf-8",
    )


def strip_declaration(data: bytes) -> bytes:
    """``data`` without surrounding whitespace, a UTF-8 BOM or a leading ``<?xml ...?>`` declaration."""
    body = data.strip()
    if body.startswith(_BOM):
        body = body[3:].lstrip()
    if body.startswith(_XML_DECL):
        end = body.find(b"?>")
        if end < 0:
            raise RemoteProtocolError("xml_malformed", "unterminated XML declaration")
        body = body[end + 2 :].lstrip()
    return body


def reject_markup_declarations(body: bytes) -> None:
    """Refuse DOCTYPE, ENTITY and processing instructions before libxml2 sees them."""
    # Single-byte searches first: "<" is everywhere, so two-byte searches starting with it are slow.
    if _BANG in body and body.find(b"<!") >= 0:
        low = body.lower()
        if b"<!doctype" in low:
            raise RemoteProtocolError("doctype")
        if b"<!entity" in low:
            raise RemoteProtocolError("entity")
    if _QUESTION in body and body.find(b"<?") >= 0:
        raise RemoteProtocolError("processing_instruction")


def parse_document(
    body: bytes, limits: Limits, parser: etree.XMLParser | None = None
) -> etree._Element:
    """Parse a whole event document already stripped of its declaration; returns the root element.

    ``body`` must have passed :func:`reject_markup_declarations`. ``parser`` must come from
    :func:`new_parser` (a fresh one is made when omitted).
    """
    if len(body) > limits.max_event_bytes:
        raise LimitExceeded("event", limit=limits.max_event_bytes, got=len(body))
    return _parse(body, limits.max_depth, parser)


def _parse(body: bytes, max_depth: int, parser: etree.XMLParser | None = None) -> etree._Element:
    try:
        root = etree.fromstring(body, parser if parser is not None else new_parser())
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None
    # Depth cannot exceed the number of tags: skip the check for the usual small event.
    if body.count(b"<") > max_depth and root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise RemoteProtocolError("too_deep", f"more than {max_depth} levels")
    return root


def parse_fragment(fragment: bytes, limits: Limits) -> etree._Element:
    """Parse detail children (no wrapper) into a ``<detail>`` element, with the same hardening."""
    if len(fragment) > limits.max_event_bytes:
        raise LimitExceeded("detail", limit=limits.max_event_bytes, got=len(fragment))
    reject_markup_declarations(fragment)
    # <detail> sits one level below <event>, so the fragment gets one level less.
    return _parse(b"<detail>" + fragment + b"</detail>", max(limits.max_depth - 1, 1))


def _syntax_error(exc: etree.XMLSyntaxError) -> RemoteProtocolError:
    msg = str(exc.msg or "")
    if "depth" in msg.lower():
        return RemoteProtocolError("too_deep", msg[:120])
    if exc.code in _ERR_UNDECLARED_ENTITY:
        return RemoteProtocolError("entity", msg[:120])
    if "encoding" in msg.lower() or "utf-8" in msg.lower():
        return RemoteProtocolError("bad_encoding", msg[:120])
    return RemoteProtocolError("xml_malformed", msg[:120])
