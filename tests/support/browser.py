"""A real Chromium, driven by Playwright, for tests of the map page against a real server.

Where the browser comes from, in order: ``RALLYPOINT_TEST_CHROMIUM`` (path of a Chromium binary),
``/usr/bin/chromium``, ``chromium`` on the PATH. Playwright's own browser downloads are never used.
When none is found and this process may run apt (root, ``apt-get`` present, ``RALLYPOINT_TEST_NO_APT``
unset and no ``RALLYPOINT_TEST_CHROMIUM`` asked for), the first browser fixture of the test session runs
``apt-get install -y --no-install-recommends chromium`` once (parallel workers wait on a file lock and
share its outcome). The tests are skipped, saying why, when the ``playwright`` package is missing, when
no Chromium is installed and the install was not allowed or failed, or when the Playwright driver
cannot start.

The fixtures use Playwright's synchronous API: request them from synchronous tests only (the
synchronous API refuses to run inside the asyncio loop of an ``async def`` test).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
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


NO_APT_ENV = "RALLYPOINT_TEST_NO_APT"
APT_COMMAND = ("apt-get", "install", "-y", "--no-install-recommends", "chromium")
# An install downloads about 100 MB: generous, but a hung mirror must not hang the test session.
APT_TIMEOUT_S = 900.0


def apt_refusal(*, env: Mapping[str, str], euid: int, apt_get: str | None) -> str | None:
    """Why the test setup may not install Chromium through apt here, or None when it may."""
    if env.get(NO_APT_ENV, "") not in ("", "0"):
        return f"{NO_APT_ENV} is set"
    if env.get(ENV):
        return f"{ENV} names a browser that is not there"
    if euid != 0:
        return "not root"
    if apt_get is None:
        return "no apt-get"
    return None


Runner = Callable[[Sequence[str], float], tuple[int, str]]


def _run(command: Sequence[str], timeout_s: float) -> tuple[int, str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout_s, check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return done.returncode, done.stderr.strip()


def install_chromium(
    *, find: Callable[[], Path | None], apt_get: str, lock_path: Path, run: Runner = _run,
    timeout_s: float = APT_TIMEOUT_S,
) -> tuple[Path | None, str]:
    """Install Chromium with apt once for everyone sharing ``lock_path``: (the binary or None, why not).

    A failed install is retried once after ``apt-get update``. The first caller runs apt under an
    exclusive lock and writes the outcome into the lock file; later callers (other workers of the same
    session) wait for the lock and read that outcome instead of running apt again, so a failed install
    is tried once, not once per worker.
    """
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            lock.seek(0)
            earlier = lock.read().strip()
            if earlier:
                return find(), earlier
            install = [apt_get, *APT_COMMAND[1:]]
            code, err = run(install, timeout_s)
            if code != 0:  # a fresh machine has no package lists yet: fetch them, then try once more
                code, err = run([apt_get, "update"], timeout_s)
                if code == 0:
                    code, err = run(install, timeout_s)
            found = find()
            outcome = ("installed" if found is not None
                       else f"`{' '.join(APT_COMMAND)}` failed ({code}): {err[-300:] or 'no message'}")
            lock.write(outcome)
            lock.flush()
            return found, outcome
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _session_lock() -> Path:
    # Workers of one pytest-xdist run share its run id; a plain run is its own session.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    return Path(tempfile.gettempdir()) / f"rallypoint-test-chromium-{run_id}.lock"


def chromium_or_skip() -> Path:
    """The Chromium binary, installed through apt first where this process may; skips the test when none."""
    found = find_chromium()
    if found is not None:
        return found
    where = os.environ.get(ENV) or f"{DEFAULT_PATH} or chromium on the PATH"
    apt_get = shutil.which("apt-get")
    refusal = apt_refusal(env=os.environ, euid=os.geteuid(), apt_get=apt_get)
    if refusal is not None or apt_get is None:
        pytest.skip(f"no Chromium at {where} and no install through apt ({refusal}): "
                    f"install the Debian package `chromium` or set {ENV}")
    found, outcome = install_chromium(find=find_chromium, apt_get=apt_get, lock_path=_session_lock())
    if found is None:
        pytest.skip(f"no Chromium at {where}: {outcome}")
    return found


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
    executable = chromium_or_skip()
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
