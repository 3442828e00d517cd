"""Run the real ``rallypoint serve`` in a subprocess and learn its ports from the ready line."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 30.0


class ServerProcess:
    """A real server process on ephemeral loopback ports; ``ports`` comes from ``rallypoint ready``."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self.lines: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        args = [
            sys.executable, "-m", "rallypoint.cli.main", "serve",
            "--data-dir", str(self.data_dir),
            "--bind", "127.0.0.1", "--plain-bind", "127.0.0.1",
            "--cot-port", "1", "--tls-port", "1", "--api-port", "1", "--http-port", "1",
            "--enroll-port", "1", "--federation-port", "0", "--udp-port", "1",
            "--log-format", "json", *self.extra,
        ]
        # Port 0 disables a listener; with ephemeral ports on, every enabled listener gets a free port.
        env = {**os.environ, **self.env, "RALLYPOINT_EPHEMERAL_PORTS": "1"}
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"server exited before ready: {self.tail()}")
            if line.get("msg") == "rallypoint ready":
                self.ports = {k: int(v) for k, v in line["ports"].items()}
                return
        self.stop()
        raise RuntimeError(f"server not ready within {READY_TIMEOUT_S}s: {self.tail()}")

    def __enter__(self) -> ServerProcess:
        """Start the server for a ``with`` block (a fixture's ``with ServerProcess(...) as proc: yield proc``)."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                doc = json.loads(raw)
            except json.JSONDecodeError:
                doc = {"msg": raw.rstrip()}
            self.lines.append(doc)
            self._queue.put(doc)
        self._queue.put(None)

    def wait_for_log(self, msg: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Poll the captured log lines until one matches (deadline, no fixed sleeps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.get("msg") == msg and all(line.get(k) == v for k, v in fields.items()):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"log line {msg!r} {fields} not seen; tail: {self.tail()}")

    def tail(self, n: int = 15) -> str:
        return "\n".join(json.dumps(line) for line in self.lines[-n:])

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
