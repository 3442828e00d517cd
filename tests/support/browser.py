"""A real Chromium, driven by Playwright, for tests of the map page against a real server.

Where the browser comes from, in order: ``RALLYPOINT_TEST_CHROMIUM`` (path of a Chromium binary),
``/usr/bin/chromium``, ``chromium`` on the PATH. Playwright's own browser downloads are never used.
The tests are skipped, saying why, when the ``playwright`` package is missing, when no Chromium is
installed (Debian package ``chromium``) or when the Playwright driver cannot start.

The fixtures use Playwright's synchronous API: request them from synchronous tests only (the
synchronous API refuses to run inside the asyncio loop of an ``async def`` test).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ENV = "RALLYPOINT_TEST_CHROMIUM"
DEFAULT_PATH = Path("/usr/bin/chromium")
# Headless, and nothing that reaches beyond the machine (updates, sync, QUIC probes); the sandbox
# needs user namespaces that containers often lack.
ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
# The picture draws with WebGL (MapLibre): headless Chromium renders it in software (SwiftShader).
WEBGL_ARGS = (
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
# Playwright's waits (locators, wait_for_function, navigation) give up after this long unless a call
# says otherwise: long enough for a loaded machine, short enough that a broken page fails quickly.
DEFAULT_TIMEOUT_MS = 15_000


def find_chromium() -> Path | None:
    """The Chromium binary to drive, or None when none is installed."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    if DEFAULT_PATH.is_file():
        return DEFAULT_PATH
    found = shutil.which("chromium")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Browser]:
    """One headless Chromium per test module (starting it costs about a second)."""
    yield from _launch(ARGS)


@pytest.fixture(scope="module")
def webgl_browser() -> Iterator[Browser]:
    """One headless Chromium with software WebGL per test module, for the MapLibre picture."""
    yield from _launch(WEBGL_ARGS)


def _launch(args: tuple[str, ...]) -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    executable = find_chromium()
    if executable is None:
        where = os.environ.get(ENV) or f"{DEFAULT_PATH} or chromium on the PATH"
        pytest.skip(f"no Chromium at {where}: install the Debian package `chromium` or set {ENV}")
    # Assertions (expect) wait as long as every other Playwright wait: a login on a loaded machine takes seconds.
    sync_api.expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    try:
        driver = sync_api.sync_playwright().start()
    except Exception as exc:  # whatever stops the driver (missing node binary, broken install): no browser here
        pytest.skip(f"the Playwright driver cannot start: {exc}")
    try:
        chromium = driver.chromium.launch(executable_path=str(executable), args=list(args))
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        driver.stop()


@pytest.fixture
def browser_page(chromium_browser: Browser) -> Iterator[Page]:
    """A fresh page in its own browser context (no cookies or storage shared between tests)."""
    context = chromium_browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def webgl_page(webgl_browser: Browser) -> Iterator[Page]:
    """A fresh 1024x768 page (the tablet size the picture must fit) in its own context, software WebGL."""
    context = webgl_browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
