"""The data packages panel in a real Chromium against a real server and a TAK client over TCP and HTTP.

A package uploaded in the page is listed and downloaded by the TAK client through the Marti routes
ATAK uses; sending it to the client's callsign from the page delivers a ``b-f-t-r`` file transfer
request whose URL and hash download the same bytes. A package a TAK client uploads with script
payloads in its name, keywords and creator uid is listed as text: no script runs, no request leaves
the origin. ``POST /api/packages/{hash}/send`` applies the group rules and is audited.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from lxml import etree
from playwright.sync_api import Browser, Page, expect

from tests.support.accounts import audit_entries
from tests.support.cot_client import sa
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess
from tests.support.tak_socket import TakSocket
from tests.support.web_panels import (
    XSS_IMG,
    XSS_SCRIPT,
    base_url,
    logged_in,
    open_panel,
    password_of,
    serve_with_accounts,
    shot,
)


@pytest.fixture
def packages_server(data_dir: Path) -> Iterator[ServerProcess]:
    """carol has no groups (she reads and writes ``__ANON__``, like plain TCP clients); alice is in A;
    dave is in A and ``__ANON__``."""
    yield from serve_with_accounts(data_dir, {"carol": ("member",), "alice": ("member", "A"),
                                              "dave": ("member", "A", "__ANON__")})


@contextmanager
def _packages_page(browser: Browser, server: ServerProcess, outside: list[str] | None = None) -> Iterator[Page]:
    """carol's page with the data packages panel open."""
    with logged_in(browser, server.ports, "carol", outside=outside) as page:
        open_panel(page, "packages")
        yield page


def _zip(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("MANIFEST/manifest.xml", f'<MissionPackageManifest version="2"><Configuration>'
                    f'<Parameter name="uid" value="{marker}"/></Configuration><Contents/></MissionPackageManifest>')
        zf.writestr(f"{marker}/note.txt", f"relief supplies {marker}")
    return buf.getvalue()


def test_upload_in_the_page_then_send_to_a_tak_client(packages_server: ServerProcess, webgl_browser: Browser) -> None:
    base = base_url(packages_server.ports)
    data = _zip("relief")
    digest = hashlib.sha256(data).hexdigest()
    with _packages_page(webgl_browser, packages_server) as page, TakSocket(packages_server.ports["cot"]) as tak:
        tak.send(sa("ANDROID-bravo", "BRAVO", lat=9.52, lon=31.65))
        page.wait_for_function("() => rallypoint.picture.units.has('ANDROID-bravo')")
        page.set_input_files("#packages-file", files=[{"name": "relief.zip", "mimeType": "application/zip",
                                                      "buffer": data}])
        page.fill("#packages-keywords", "water,medical")
        page.click("#packages-upload")
        expect(page.locator("#packages-status")).to_have_text("uploaded: relief.zip")
        row = page.locator(f"#packages-list li[data-hash='{digest}']")
        expect(row.locator(".package-name")).to_have_text("relief.zip")
        expect(row.locator(".package-keywords")).to_have_text("keywords: water, medical")
        expect(row.locator(".package-hash")).to_have_text(f"sha256 {digest}")
        expect(page.locator("#packages-contacts option[value='BRAVO']")).to_have_count(1)  # a connected contact
        # The TAK client finds and downloads it through Marti, as ATAK does.
        found = httpx.get(f"{base}/Marti/sync/search", params={"keywords": "water"}, timeout=10).json()
        assert [(r["Hash"], r["Name"], r["SubmissionUser"]) for r in found["results"]] == [
            (digest, "relief.zip", "carol")]
        assert httpx.get(f"{base}/Marti/sync/content", params={"hash": digest}, timeout=10).content == data
        # The page's download link serves the same bytes with the session cookie.
        with page.expect_download() as download:
            row.get_by_role("link", name="Download relief.zip").click()
        assert Path(download.value.path()).read_bytes() == data
        # Send to BRAVO: the TAK client gets ATAK's file transfer request and downloads what it names.
        row.get_by_label("Send relief.zip to callsign").fill("BRAVO")
        row.get_by_role("button", name="Send").click()
        expect(page.locator("#packages-status")).to_have_text("sent relief.zip to BRAVO")
        row.scroll_into_view_if_needed()
        shot(page, "packages")
        request = etree.fromstring(tak.wait_for(lambda e: e.type == "b-f-t-r").raw)
        share = request.find("detail/fileshare")
        assert share is not None and share.get("sha256") == digest and share.get("filename") == "relief.zip"
        assert share.get("senderCallsign") == "carol" and share.get("senderUid") == "rallypoint-api-carol"
        assert int(share.get("sizeInBytes")) == len(data)
        assert request.find("detail/ackrequest") is not None and request.find("detail/marti") is None
        got = httpx.get(share.get("senderUrl"), timeout=10)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == digest
        # An unknown contact: the server's words, nothing sent.
        row.get_by_label("Send relief.zip to callsign").fill("NOBODY")
        row.get_by_role("button", name="Send").click()
        expect(page.locator("#packages-status")).to_have_text("no connected recipient you can reach by that name")
        # Delete from the page (a cookie write that passes the origin check): gone for the TAK client too.
        row.get_by_role("button", name="Delete relief.zip").click()
        expect(page.locator("#packages-status")).to_have_text("deleted relief.zip")
        expect(page.locator("#packages-list")).to_have_text("no data packages")
        assert httpx.get(f"{base}/Marti/sync/content", params={"hash": digest}, timeout=10).status_code == 404


def test_script_payloads_in_a_tak_upload_stay_text(packages_server: ServerProcess, webgl_browser: Browser) -> None:
    base = base_url(packages_server.ports)
    outside: list[str] = []  # requests to another origin, and dialogs
    with _packages_page(webgl_browser, packages_server, outside) as page:
        data = _zip("hostile")
        digest = hashlib.sha256(data).hexdigest()
        answer = httpx.post(f"{base}/Marti/sync/upload",
                            params={"name": f"{XSS_IMG}.zip", "keywords": f"{XSS_IMG},{XSS_SCRIPT}",
                                    "creatorUid": XSS_SCRIPT},
                            files={"assetfile": (f"{XSS_IMG}.zip", data, "application/zip")}, timeout=10)
        assert answer.status_code == 200, answer.text
        stored = httpx.get(f"{base}/api/packages/{digest}", timeout=10).json()
        page.click("#packages-refresh")
        row = page.locator(f"#packages-list li[data-hash='{digest}']")
        expect(row.locator(".package-name")).to_have_text(stored["name"])  # as the server keeps it
        expect(row.locator(".package-keywords")).to_have_text(f"keywords: {XSS_IMG}, {XSS_SCRIPT}")
        expect(row.locator(".package-creator")).to_have_text(f"from {XSS_SCRIPT}")
        assert row.locator("img, script").count() == 0
        assert page.evaluate("() => window.__xss") is None
    assert outside == []


def test_send_applies_group_rules_and_is_audited(packages_server: ServerProcess, data_dir: Path) -> None:
    base = base_url(packages_server.ports)

    def token(user: str) -> dict[str, str]:
        answer = httpx.post(f"{base}/api/auth/token", auth=(user, password_of(user)), timeout=10)
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    carol, alice, dave = token("carol"), token("alice"), token("dave")
    data = _zip("rules")
    digest = hashlib.sha256(data).hexdigest()
    for who in (carol, alice):
        stored = httpx.post(f"{base}/api/packages", params={"name": "rules.zip"}, content=data,
                            headers={**who, "Content-Type": "application/zip"}, timeout=10)
        assert stored.status_code == 201, stored.text
    send = f"{base}/api/packages/{digest}/send"
    with TakSocket(packages_server.ports["cot"]) as tak:
        tak.send(sa("ANDROID-delta", "DELTA"))
        wait_until_sync(lambda: any(c["callsign"] == "DELTA" for c in
                                    httpx.get(f"{base}/api/clients", headers=carol, timeout=10).json()), "DELTA listed")
        # alice (group A) does not reach an __ANON__ client: same answer as an unknown one.
        refused = httpx.post(send, json={"to_callsign": "DELTA"}, headers=alice, timeout=10)
        assert refused.status_code == 404 and refused.json()["error"] == "recipient_unreachable"
        both = httpx.post(send, json={"to_callsign": "DELTA", "to_uid": "ANDROID-delta"}, headers=carol, timeout=10)
        assert both.status_code == 422
        unknown = httpx.post(f"{base}/api/packages/{'0' * 64}/send", json={"to_uid": "ANDROID-delta"},
                             headers=carol, timeout=10)
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        anonymous = httpx.post(send, json={"to_uid": "ANDROID-delta"}, timeout=10)
        assert anonymous.status_code == 401
        hostile = httpx.post(send, json={"to_callsign": "DEL\x01TA"}, headers=carol, timeout=10)
        assert hostile.status_code == 422 and "XML" in hostile.json()["detail"]
        # dave reads alice's group-A package and reaches DELTA through __ANON__, where DELTA cannot read it.
        secret = _zip("group-a")
        stored = httpx.post(f"{base}/api/packages", params={"name": "a.zip"}, content=secret,
                            headers={**alice, "Content-Type": "application/zip"}, timeout=10)
        assert stored.status_code == 201
        unreadable = httpx.post(f"{base}/api/packages/{stored.json()['hash']}/send", json={"to_callsign": "DELTA"},
                                headers=dave, timeout=10)
        assert unreadable.status_code == 409 and unreadable.json()["error"] == "recipient_cannot_read"
        sent = httpx.post(send, json={"to_uid": "ANDROID-delta"}, headers=carol, timeout=10)
        assert sent.status_code == 201, sent.text
        body = sent.json()
        assert (body["to_callsign"], body["recipients"], body["hash"]) == ("DELTA", 1, digest)
        event = etree.fromstring(tak.wait_for(lambda e: e.uid == body["uid"]).raw)
        assert event.get("type") == "b-f-t-r" and event.find("detail/fileshare").get("sha256") == digest
    # Playwright's loop runs in this thread once a browser test of the module started: read the log in another.
    with ThreadPoolExecutor(1) as pool:
        entries = wait_until_sync(
            lambda: [e for e in pool.submit(audit_entries, data_dir).result() if e.action == "package.send"],
            "package.send audited")
    assert [(e.actor, e.target) for e in entries] == [("carol", digest)]
