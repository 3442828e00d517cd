"""When the test setup installs Chromium through apt, and how often (tests.support.browser).

No real apt runs here: the install takes the runner, the finder and the lock file as parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.browser import APT_COMMAND, ENV, NO_APT_ENV, apt_refusal, install_chromium

APT = "/usr/bin/apt-get"
INSTALL = [APT, *APT_COMMAND[1:]]


class FakeApt:
    """Answers each command with the next code of ``codes``; an install that succeeds places the binary."""

    def __init__(self, binary: Path, codes: Sequence[int]) -> None:
        self.binary, self.codes, self.calls = binary, list(codes), list[list[str]]()
        self.lock = threading.Lock()

    def __call__(self, command: Sequence[str], timeout_s: float) -> tuple[int, str]:
        assert timeout_s > 0
        with self.lock:
            self.calls.append(list(command))
            code = self.codes.pop(0)
        if code == 0 and "install" in command:
            self.binary.write_text("#!/bin/sh\n")
        return code, "" if code == 0 else f"E: failure {code}"

    def find(self) -> Path | None:
        return self.binary if self.binary.is_file() else None


@pytest.mark.parametrize(
    ("env", "euid", "apt_get", "refused"),
    [
        ({}, 0, APT, None),
        ({NO_APT_ENV: "0"}, 0, APT, None),
        ({NO_APT_ENV: "1"}, 0, APT, NO_APT_ENV),
        ({ENV: "/opt/missing/chrome"}, 0, APT, ENV),
        ({}, 1000, APT, "not root"),
        ({}, 0, None, "no apt-get"),
    ],
)
def test_apt_is_used_only_by_root_with_apt_get_and_not_disabled(
    env: dict[str, str], euid: int, apt_get: str | None, refused: str | None
) -> None:
    reason = apt_refusal(env=env, euid=euid, apt_get=apt_get)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_one_install_serves_every_worker_of_the_session(tmp_path: Path) -> None:
    apt = FakeApt(tmp_path / "chromium", [0])
    lock = tmp_path / "session.lock"
    results: list[tuple[Path | None, str]] = []
    workers = [threading.Thread(target=lambda: results.append(
        install_chromium(find=apt.find, apt_get=APT, lock_path=lock, run=apt))) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert apt.calls == [INSTALL]  # once, however many workers asked
    assert results == [(tmp_path / "chromium", "installed")] * 4


def test_a_failed_install_is_retried_after_update_then_reported_to_later_callers(tmp_path: Path) -> None:
    apt = FakeApt(tmp_path / "chromium", [100, 0, 100])
    lock = tmp_path / "session.lock"
    found, why = install_chromium(find=apt.find, apt_get=APT, lock_path=lock, run=apt)
    assert found is None
    assert apt.calls == [INSTALL, [APT, "update"], INSTALL]
    assert "failed (100)" in why and "E: failure 100" in why
    # A later worker of the same session does not run apt again and skips with the same reason.
    again = install_chromium(find=apt.find, apt_get=APT, lock_path=lock, run=apt)
    assert again == (None, why) and len(apt.calls) == 3


def test_an_install_that_works_after_update_finds_the_browser(tmp_path: Path) -> None:
    apt = FakeApt(tmp_path / "chromium", [100, 0, 0])
    found, why = install_chromium(find=apt.find, apt_get=APT, lock_path=tmp_path / "l", run=apt)
    assert (found, why) == (tmp_path / "chromium", "installed")


def test_a_failed_update_stops_there(tmp_path: Path) -> None:
    apt = FakeApt(tmp_path / "chromium", [100, 7])
    found, why = install_chromium(find=apt.find, apt_get=APT, lock_path=tmp_path / "l", run=apt)
    assert found is None and "(7)" in why and len(apt.calls) == 2
