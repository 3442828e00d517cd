"""Client certificates issued from a test server's CA, as files or as a ready TLS context."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import NamedTuple

from rallypoint.clock import Clock, SystemClock
from rallypoint.security.ca import CertificateAuthority
from rallypoint.transport.tls import client_ssl_context
from tests.support.server import ServerProcess


class ClientBundle(NamedTuple):
    """Paths of one issued client certificate, its key and the CA that signed it."""

    ca: Path
    cert: Path
    key: Path
    serial: int


def _data_dir(source: ServerProcess | Path) -> Path:
    return source.data_dir if isinstance(source, ServerProcess) else source


def client_bundle(
    source: ServerProcess | Path, name: str, out_dir: Path, *, clock: Clock | None = None
) -> ClientBundle:
    """Issue a client certificate ``CN=name`` from the CA in ``<data_dir>/ca`` into ``out_dir/name``.

    ``source`` is a server or its data directory. ``clock`` sets the issuing time (default: now).
    """
    ca = CertificateAuthority.load_or_create(_data_dir(source) / "ca", clock=clock or SystemClock())
    issued = ca.issue_client(name)
    by_name = {p.name: p for p in ca.write_client_bundle(issued, out_dir / name)}
    return ClientBundle(ca.ca_path, by_name[f"{name}.pem"], by_name[f"{name}.key"], issued.serial)


def bundle_context(bundle: ClientBundle) -> ssl.SSLContext:
    """A client TLS context presenting ``bundle``'s certificate and trusting its CA."""
    return client_ssl_context(bundle.ca, bundle.cert, bundle.key)


def client_context(source: ServerProcess | Path, name: str, out_dir: Path) -> ssl.SSLContext:
    """Issue a client certificate for ``name`` and return a TLS context using it.

    The context serves both CoT streams (``ssl_context=``) and HTTPS clients (httpx ``verify=``).
    """
    return bundle_context(client_bundle(source, name, out_dir))
