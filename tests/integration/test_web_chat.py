"""The chat and contacts panels in a real Chromium against a real server and raw TCP TAK clients.

A chat typed in the page reaches a TAK client as GeoChat from ``rallypoint-api-<user>`` with the user's
name as callsign; a TAK client's chat to All Chat Rooms and one addressed to the web user show in the
page, each in its conversation, with unread counts; a chat in a group the web user does not read never
shows. The contacts panel lists TAK clients by team, searches, and zooms to one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from rallypoint.model.cot import CotEvent
from rallypoint.services.tasks_cot import chat_text
from tests.support.cot_client import chat, sa
from tests.support.server import ServerProcess
from tests.support.tak_socket import TakSocket
from tests.support.web_panels import add_accounts, logged_in, open_panel, shot

# carol has no groups: she reads __ANON__, where plain TCP clients report. alice is in group A only.
ACCOUNTS = {"carol": ("member",), "alice": ("member", "A")}


@pytest.fixture
def chat_server(data_dir: Path) -> Iterator[ServerProcess]:
    add_accounts(data_dir, ACCOUNTS)
    with ServerProcess(data_dir) as proc:
        yield proc


def _is_chat_from(event: CotEvent, callsign: str, room: str, text: str) -> bool:
    c = event.detail.chat
    return (event.type == "b-t-f" and c is not None and c.sender_callsign == callsign and c.chatroom == room
            and chat_text(event) == text)


def _send(page: Page, text: str) -> None:
    page.fill("#chat-text", text)
    page.press("#chat-text", "Enter")


def _history(page: Page) -> list[str]:
    return page.locator("#chat-history .chat-text").all_text_contents()


def test_chat_between_the_page_and_a_tak_client(chat_server: ServerProcess, webgl_browser: Browser) -> None:
    with TakSocket(chat_server.ports["cot"]) as tak, logged_in(webgl_browser, chat_server.ports, "carol") as page:
        tak.send(sa("tak-alpha", "ALPHA", lat=39.10, lon=-120.00))
        page.wait_for_function("() => rallypoint.picture.units.has('tak-alpha')")
        open_panel(page, "chat")

        # The page to All Chat Rooms: a GeoChat from carol's API identity.
        expect(page.locator("#chat-conversation")).to_have_value("all")
        _send(page, "hello all")
        got = tak.wait_for(lambda e: _is_chat_from(e, "carol", "All Chat Rooms", "hello all"))
        assert got.detail.chat is not None and got.detail.chat.members[0] == "rallypoint-api-carol"
        expect(page.locator("#chat-history .chat-text")).to_have_text(["hello all"])

        # The page to one contact: the TAK client's conversation, named by its callsign.
        page.wait_for_function("() => document.querySelector('#chat-conversation option[value=\"uid:tak-alpha\"]')")
        page.select_option("#chat-conversation", "uid:tak-alpha")
        expect(page.locator("#chat-conversation option[value='uid:tak-alpha']")).to_have_text("ALPHA")
        _send(page, "hello alpha")
        direct = tak.wait_for(lambda e: _is_chat_from(e, "carol", "ALPHA", "hello alpha"))
        assert direct.detail.chat is not None and direct.detail.chat.members == ("rallypoint-api-carol", "tak-alpha")

        # The client to All Chat Rooms, while the page shows the direct conversation: counted as unread.
        tak.send(chat("tak-alpha", "ALPHA", to_uid=None, to_cs=None, text="alpha to everyone"))
        expect(page.locator("#chat-conversation option[value='all']")).to_have_text("All Chat Rooms (1)")
        expect(page.locator("#panel-chat .chat-unread")).to_have_text(" 1 unread")
        # The client to carol herself (her callsign and her API uid): her conversation with ALPHA.
        tak.send(chat("tak-alpha", "ALPHA", to_uid="rallypoint-api-carol", to_cs="carol", text="alpha to carol"))
        expect(page.locator("#chat-history .chat-text")).to_have_text(["hello alpha", "alpha to carol"])
        expect(page.locator("#chat-history .chat-sender").last).to_have_text("ALPHA")
        page.select_option("#chat-conversation", "all")
        expect(page.locator("#chat-history .chat-text")).to_have_text(["hello all", "alpha to everyone"])
        expect(page.locator("#chat-conversation option[value='all']")).to_have_text("All Chat Rooms")
        expect(page.locator("#panel-chat .chat-unread")).to_have_text("")
        # The chat to carol reached her: the server told the client of no delivery failure.
        assert not any(e.type == "b-t-f-s" for e in tak.events)
        shot(page, "chat")


def test_a_team_chat_from_the_page_reaches_that_team_only(chat_server: ServerProcess, webgl_browser: Browser) -> None:
    with (
        TakSocket(chat_server.ports["cot"]) as cyan,
        TakSocket(chat_server.ports["cot"]) as red,
        logged_in(webgl_browser, chat_server.ports, "carol") as page,
    ):
        cyan.send(sa("tak-cyan", "CYAN1", group="Cyan", lat=39.10, lon=-120.00))
        red.send(sa("tak-red", "RED1", group="Red", lat=39.11, lon=-120.01))
        page.wait_for_function("() => ['tak-cyan', 'tak-red'].every((uid) => rallypoint.picture.units.has(uid))")
        open_panel(page, "chat")
        page.select_option("#chat-conversation", "team:Cyan")
        expect(page.locator("#chat-conversation option[value='team:Cyan']")).to_have_text("Team Cyan")
        _send(page, "cyan only")
        got = cyan.wait_for(lambda e: _is_chat_from(e, "carol", "Cyan", "cyan only"))
        assert got.detail.chat is not None and got.detail.chat.members[0] == "rallypoint-api-carol"
        expect(page.locator("#chat-history .chat-text")).to_have_text(["cyan only"])
        # A later message to All Chat Rooms reaches the Red client: the team message, sent before it, never did.
        page.select_option("#chat-conversation", "all")
        _send(page, "everyone")
        red.wait_for(lambda e: _is_chat_from(e, "carol", "All Chat Rooms", "everyone"))
        assert not any(e.type == "b-t-f" and "cyan only" in chat_text(e) for e in red.events)


def test_a_chat_in_a_group_the_user_does_not_read_never_shows(
    chat_server: ServerProcess, webgl_browser: Browser
) -> None:
    with (
        TakSocket(chat_server.ports["cot"]) as tak,
        logged_in(webgl_browser, chat_server.ports, "alice") as alice,
        logged_in(webgl_browser, chat_server.ports, "carol") as carol,
    ):
        open_panel(alice, "chat")
        open_panel(carol, "chat")
        tak.send(sa("tak-anon", "ANON", lat=39.10, lon=-120.00))
        tak.send(chat("tak-anon", "ANON", to_uid=None, to_cs=None, text="for __ANON__ readers"))
        # carol reads __ANON__ and sees it: it was delivered; alice (group A) is not among its readers.
        expect(carol.locator("#chat-history .chat-text")).to_have_text(["for __ANON__ readers"])
        # Addressed to alice: the router finds no reachable alice, and says so to the sender.
        message = chat("tak-anon", "ANON", to_uid="rallypoint-api-alice", to_cs="alice", text="for alice")
        tak.send(message)
        tak.wait_for(lambda e: e.type == "b-t-f-s")
        # alice's own message is an event after both: once it is in her history, nothing else came before it.
        _send(alice, "alice speaking")
        expect(alice.locator("#chat-history .chat-text")).to_have_text(["alice speaking"])
        assert alice.locator("#chat-conversation option", has_text="ANON").count() == 0
        assert "(" not in alice.locator("#chat-conversation option[value='all']").inner_text()


def test_contacts_by_team_search_and_zoom_to(chat_server: ServerProcess, webgl_browser: Browser) -> None:
    port = chat_server.ports["cot"]
    with (
        TakSocket(port) as alpha, TakSocket(port) as bravo, TakSocket(port) as charlie,
        logged_in(webgl_browser, chat_server.ports, "carol") as page,
    ):
        alpha.send(sa("c-1", "ALPHA", group="Cyan", lat=39.10, lon=-120.00))
        bravo.send(sa("c-2", "BRAVO", group="Cyan", lat=39.20, lon=-120.10))
        charlie.send(sa("c-3", "CHARLIE", group="Red", lat=45.00, lon=10.00))
        open_panel(page, "contacts")
        contacts = page.locator("#panel-contacts")
        expect(contacts.locator(".contacts-team h3")).to_have_text(["Cyan (2)", "Red (1)"])
        expect(contacts.locator(".contact-callsign")).to_have_text(["ALPHA", "BRAVO", "CHARLIE"])
        expect(contacts.locator(".contact-role").first).to_have_text("Team Member")
        page.fill("#contacts-search", "charl")
        expect(contacts.locator(".contact:visible .contact-callsign")).to_have_text(["CHARLIE"])
        expect(contacts.locator(".contacts-count")).to_have_text("1 of 3 contacts")
        page.fill("#contacts-search", "cyan")
        expect(contacts.locator(".contact:visible .contact-callsign")).to_have_text(["ALPHA", "BRAVO"])
        page.fill("#contacts-search", "")
        page.get_by_role("button", name="Zoom to CHARLIE").click()
        expect(page.locator("#sel-callsign")).to_have_text("CHARLIE")
        page.wait_for_function("""() => { const m = rallypoint.view.map, c = m.getCenter();
                                          return !m.isMoving() && Math.abs(c.lat - 45) < 0.01
                                                 && Math.abs(c.lng - 10) < 0.01 && m.getZoom() >= 14; }""")
        # A new report moves the contact to its new team, in place.
        charlie.send(sa("c-3", "CHARLIE", group="Cyan", lat=45.00, lon=10.00))
        expect(contacts.locator(".contacts-team h3:visible")).to_have_text(["Cyan (3)"])
