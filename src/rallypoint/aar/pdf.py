"""PDF output: the HTML report printed by a headless Chromium, when one is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rallypoint.errors import RallypointError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 180


class NoPdfRenderer(RallypointError):
    """No headless browser to print the report with."""


class PdfFailed(RallypointError):
    """The browser ran but wrote no PDF."""


def find_browser(env: dict[str, str] | None = None) -> str | None:
    """``RALLYPOINT_CHROMIUM`` when set, else the first Chromium or Chrome on ``PATH``."""
    environ = os.environ if env is None else env
    if chosen := environ.get("RALLYPOINT_CHROMIUM"):
        return chosen if Path(chosen).exists() or shutil.which(chosen) else None
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


def html_to_pdf(html: str, out: Path, *, browser: str | None = None) -> None:
    """Print ``html`` to ``out`` with ``--headless --print-to-pdf`` (no network: the page makes no request)."""
    exe = browser or find_browser()
    if exe is None:
        raise NoPdfRenderer("no PDF renderer is installed (Chromium or Chrome); write .html instead")
    with tempfile.TemporaryDirectory(prefix="rallypoint-aar-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = out.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a PDF left from an earlier run must not pass for this one
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                f"--user-data-dir={Path(tmp) / 'profile'}", f"--print-to-pdf={target}", page.as_uri()]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfFailed(f"{exe} failed: {exc}") from exc
    if not target.exists() or target.stat().st_size == 0:
        raise PdfFailed(f"{exe} wrote no PDF (exit {done.returncode}): {done.stderr.strip()[-300:]}")
