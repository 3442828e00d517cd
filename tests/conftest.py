"""Shared fixtures: real server processes on ephemeral loopback ports, and CoT clients."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.accounts import create_users
from tests.support.browser import browser_page, chromium_browser, webgl_browser, webgl_page  # noqa: F401 (fixtures for browser tests)
from tests.support.postgis import postgis_database  # noqa: F401 (fixture for the PostGIS history tests)
from tests.support.postgres import postgres_database  # noqa: F401 (fixture for contract and integration tests)
from tests.support.server import ServerProcess

SAMPLES = Path(__file__).parent / "data" / "samples"


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA created once per test run and copied into each server's data dir (key generation is slow)."""
    from rallypoint.clock import SystemClock
    from rallypoint.security.ca import CertificateAuthority

    root = tmp_path_factory.mktemp("ca-template")
    CertificateAuthority.load_or_create(root / "ca", clock=SystemClock())
    return root / "ca"


@pytest.fixture
def data_dir(tmp_path: Path, ca_template: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copytree(ca_template, d / "ca")
    return d


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """A fresh real server with plain TCP, TLS, UDP and HTTP on ephemeral ports."""
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def demo_server(data_dir: Path) -> Iterator[ServerProcess]:
    """A fresh real server running the demo: simulated units move and report alongside the test's clients."""
    with ServerProcess(data_dir, "--demo") as proc:
        yield proc


@pytest.fixture
def api_server(data_dir: Path) -> Iterator[ServerProcess]:
    """A fresh real server whose accounts are alice (A), bob (B) and root (admin in Ops), see ``PASSWORDS``."""
    create_users(data_dir)
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
async def clients() -> AsyncIterator[list[object]]:
    """Collects clients opened in a test and closes them at the end."""
    opened: list[object] = []
    yield opened
    for client in opened:
        await client.close()  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach the server's last log lines to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name, proc in funcargs.items():
            if isinstance(proc, ServerProcess):
                report.sections.append((f"{name} log", proc.tail(40)))
