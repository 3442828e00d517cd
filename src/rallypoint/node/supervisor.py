"""``serve --workers N``: this process supervises N workers that share the ports and one NATS bus.

Order of things: resolve and hold every listening port (SO_REUSEPORT), start an embedded
``nats-server`` unless ``--bus nats://...`` was given, start worker 1 alone (a first start creates
the CA, keys and database schemas, so no two processes race for them), then the others, log
``rallypoint ready`` once every worker accepts, restart a worker that dies (with backoff), and on
SIGTERM/SIGINT stop the workers, wait for them to drain, stop NATS last and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rallypoint.config import Settings
from rallypoint.errors import RallypointError
from rallypoint.node.embedded_nats import EmbeddedNats
from rallypoint.node.node_id import resolve_node_id
from rallypoint.node.workers import (
    READY_LINE,
    WorkerSpec,
    encode_spec,
    planned_listeners,
    refuse_unsafe,
    reserve,
    worker_settings,
)

log = logging.getLogger("rallypoint")

# Restart delays: doubled after each crash in a row, reset once a worker has run for a while.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
BACKOFF_RESET_AFTER_S = 60.0
# Time a worker gets to drain after SIGTERM beyond its own shutdown_grace_s, before SIGKILL.
DRAIN_MARGIN_S = 20.0


def worker_command() -> list[str]:
    """How to start a worker: this interpreter running ``rallypoint serve --worker``."""
    return [sys.executable, "-m", "rallypoint.cli.main", "serve", "--worker"]


@dataclass
class _Slot:
    index: int
    restarts: int = 0
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class StartFailed(RallypointError):
    """A worker exited before it was ready for the first time."""


class Supervisor:
    """Runs N worker processes; :meth:`run` returns the exit code of ``serve``."""

    def __init__(self, settings: Settings, *, command: list[str] | None = None) -> None:
        self.settings = settings
        self.command = command or worker_command()
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._slots = [_Slot(index) for index in range(1, settings.workers + 1)]

    def stop(self) -> None:
        """Begin the shutdown (SIGTERM and SIGINT do this)."""
        self._stopping.set()

    async def run(self) -> int:
        """Start everything, supervise until stopped, then stop the workers and NATS; the exit code."""
        s = self.settings
        refuse_unsafe(s)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        data = Path(s.data_dir)
        base_id = await asyncio.to_thread(_base_node_id, s, data)
        held: dict[str, socket.socket] = {}
        nats: EmbeddedNats | None = None
        try:
            listeners = planned_listeners(s)
            for listener in listeners:
                held[listener.name] = reserve(listener, ephemeral=s.ephemeral_ports)
            ports = {name: int(sock.getsockname()[1]) for name, sock in held.items()}
            bus = s.bus
            if not bus.startswith(("nats://", "tls://")):
                nats = await EmbeddedNats.start(data / "nats")
                bus = nats.url
                log.info("embedded nats-server started", extra={"url": bus, "pid": nats.pid})
            specs = {
                slot.index: worker_settings(s, index=slot.index, ports=ports, bus=bus, node_id=base_id)
                for slot in self._slots
            }
            return await self._supervise(specs, ports, base_id, udp=[held.pop(n.name) for n in listeners if n.udp])
        finally:
            if nats is not None:
                await nats.stop()
                log.info("embedded nats-server stopped")
            for sock in held.values():
                sock.close()
            log.info("stopped")

    async def _supervise(
        self, specs: dict[int, Settings], ports: dict[str, int], base_id: str, *, udp: list[socket.socket]
    ) -> int:
        try:
            async with asyncio.TaskGroup() as tg:
                first, *others = self._slots
                tasks = [tg.create_task(self._keep(first, specs[first.index]), name="worker-1")]
                if not await self._until_ready([first], tasks):
                    return await self._shutdown(tasks)
                # A held UDP socket would take its share of datagrams: released once a worker has bound the port.
                for sock in udp:
                    sock.close()
                tasks += [tg.create_task(self._keep(slot, specs[slot.index]), name=f"worker-{slot.index}")
                          for slot in others]
                if not await self._until_ready(self._slots, tasks):
                    return await self._shutdown(tasks)
                log.info(
                    "rallypoint ready",
                    extra={"ports": ports, "node": base_id, "workers": len(self._slots),
                           "pids": [slot.process.pid for slot in self._slots if slot.process is not None]},
                )
                await self._stopping.wait()
                return await self._shutdown(tasks)
        except* StartFailed as failed:
            for error in failed.exceptions:
                log.error("worker failed to start", extra={"error": str(error)})
        return 1

    async def _until_ready(self, slots: list[_Slot], tasks: list[asyncio.Task[int]]) -> bool:
        """True once every slot is ready; False if a stop came first. A failed start raises from its task."""
        waiting = {asyncio.ensure_future(slot.ready.wait()) for slot in slots}
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            pending = set(waiting)
            while pending:
                done, _ = await asyncio.wait({*pending, stop, *tasks}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done or any(task in done for task in tasks):
                    return False
                pending -= done
            return True
        finally:
            for future in (*waiting, stop):
                future.cancel()

    async def _shutdown(self, tasks: list[asyncio.Task[int]]) -> int:
        self._stopping.set()
        log.info("shutting down", extra={"workers": len(tasks)})
        for slot in self._slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)
        _, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_s + DRAIN_MARGIN_S)
        if late:
            for slot in self._slots:
                if slot.process is not None and slot.process.returncode is None:
                    log.error("worker did not drain in time; killed", extra={"worker": slot.index})
                    with contextlib.suppress(ProcessLookupError):
                        slot.process.kill()
        codes = [await task for task in tasks]
        failed = [code for code in codes if code != 0]
        if failed:
            log.error("workers did not stop cleanly", extra={"codes": codes})
        return 1 if failed else 0

    async def _keep(self, slot: _Slot, settings: Settings) -> int:
        """Run the slot's worker, restarting it after unexpected exits; its last exit code once stopping."""
        failures = 0
        while True:
            spec = WorkerSpec(index=slot.index, count=len(self._slots), restarts=slot.restarts, settings=settings)
            started = time.monotonic()
            code = await self._run_once(slot, spec)
            if self._stopping.is_set():
                return code
            if not slot.ready.is_set():
                raise StartFailed(f"worker {slot.index} exited with code {code} before it was ready")
            failures = 0 if time.monotonic() - started >= BACKOFF_RESET_AFTER_S else failures + 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures - 1))
            slot.restarts += 1
            self.restarts += 1
            log.warning(
                "worker exited unexpectedly",
                extra={"worker": slot.index, "code": code, "restarts": slot.restarts,
                       "restarts_total": self.restarts, "restart_in_s": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return 0

    async def _run_once(self, slot: _Slot, spec: WorkerSpec) -> int:
        """Start one worker process and wait for it to exit (the slot's ready event set when it is)."""
        process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            # Signals reach workers through the supervisor only (a Ctrl-C is not delivered twice).
            start_new_session=True,
        )
        slot.process = process
        node_id = spec.settings.node_id
        log.info("worker started", extra={"worker": slot.index, "pid": process.pid, "node": node_id})
        assert process.stdin is not None and process.stdout is not None
        # The pipe stays open: the worker stops when it closes (this process gone).
        process.stdin.write(encode_spec(spec))
        try:
            while line := await process.stdout.readline():
                if line == READY_LINE:
                    slot.ready.set()
                    if spec.restarts:
                        log.info("worker ready again", extra={"worker": slot.index, "pid": process.pid,
                                                               "node": node_id, "restarts": spec.restarts})
            return await process.wait()
        finally:
            if process.returncode is None:
                # Cancelled (the supervisor itself failing): never leave the worker behind.
                process.kill()
                await process.wait()
            process.stdin.close()


def _base_node_id(settings: Settings, data: Path) -> str:
    """The id every worker's id derives from (``<base>-w<index>``), kept in the data directory."""
    data.mkdir(parents=True, exist_ok=True)
    return resolve_node_id(settings.node_id, data)
