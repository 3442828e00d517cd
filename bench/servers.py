"""Starting the servers the baselines compare: the bench relay, taky and Rallypoint.

Each launcher is a context manager yielding a ``Running`` (CoT port + pid) once the server
accepts connections, and stops the server on exit. Output goes to ``bench/results/logs/``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOGS = BENCH / "results" / "logs"
TAKY_VENV = BENCH / ".venv-taky"
START_TIMEOUT_S = 60.0


class ServerUnavailable(RuntimeError):
    """The server cannot be started here (not installed, did not become ready)."""


@dataclass(frozen=True)
class Running:
    name: str
    port: int
    pid: int
    log: Path


def free_port() -> int:
    """A port nobody listens on right now (bind to 0, read it back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard limit (thousands of connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"{name} exited with {proc.returncode}; see {log}")
        if ready():
            return
        time.sleep(0.1)
    raise ServerUnavailable(f"{name} not ready within {START_TIMEOUT_S:.0f} s; see {log}")


def _log_says(log: Path, needle: str) -> Callable[[], bool]:
    return lambda: log.exists() and needle in log.read_text(errors="replace")


def _accepts(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


@contextlib.contextmanager
def _process(
    name: str,
    cmd: list[str],
    ready: Callable[[Path], Callable[[], bool]],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=raise_fd_limit)
        try:
            _wait_until(ready(log), proc, name, log)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@contextlib.contextmanager
def relay() -> Iterator[Running]:
    port = free_port()
    cmd = [sys.executable, str(BENCH / "relay.py"), "--port", str(port)]
    with _process("relay", cmd, lambda log: _log_says(log, "relay listening")) as proc:
        yield Running("relay", port, proc.pid, LOGS / "relay.log")


@contextlib.contextmanager
def taky() -> Iterator[Running]:
    exe = TAKY_VENV / "bin" / "taky"
    if not exe.exists():
        raise ServerUnavailable(f"taky not installed: python3 -m venv {TAKY_VENV} && {TAKY_VENV}/bin/pip install taky")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-taky-") as tmp:
        conf = Path(tmp) / "taky.conf"
        conf.write_text(
            "[taky]\nhostname = localhost\nnode_id = BENCH\nbind_ip = 127.0.0.1\nroot_dir = .\n\n"
            f"[cot_server]\nport = {port}\n\n[dp_server]\nupload_path = ./dp-user\n\n[ssl]\nenabled = false\n"
        )
        cmd = [str(exe), "-c", str(conf), "-l", "warning"]
        with _process("taky", cmd, lambda _log: _accepts(port), cwd=Path(tmp)) as proc:
            yield Running("taky", port, proc.pid, LOGS / "taky.log")


def _rallypoint_cmd() -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    exe = ROOT / ".venv" / "bin" / "rallypoint"
    if exe.exists():
        return [str(exe)], env
    found = shutil.which("rallypoint")
    if found:
        return [found], env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "rallypoint.cli.main"], env


@contextlib.contextmanager
def rallypoint() -> Iterator[Running]:
    port, http_port = free_port(), free_port()
    base, env = _rallypoint_cmd()
    # Load tests come from one address and blast one connection as fast as possible: lift the
    # abuse limits that would (correctly) throttle that in production.
    env.update(
        RALLYPOINT_MAX_EVENTS_PER_S="0", RALLYPOINT_IP_EVENTS_PER_S="0", RALLYPOINT_MAX_CONNECTIONS_PER_IP="0",
    )
    with tempfile.TemporaryDirectory(prefix="bench-rallypoint-") as tmp:
        cmd = [
            *base, "serve", "--data-dir", tmp, "--cot-port", str(port), "--tls-port", "0",
            "--api-port", "0", "--enroll-port", "0", "--http-port", str(http_port),
            "--federation-port", "0",
        ]  # fmt: skip
        with _process("rallypoint", cmd, lambda log: _log_says(log, "rallypoint ready"), env=env) as proc:
            yield Running("rallypoint", port, proc.pid, LOGS / "rallypoint.log")


LAUNCHERS: dict[str, Callable[[], contextlib.AbstractContextManager[Running]]] = {
    "relay": relay,
    "taky": taky,
    "rallypoint": rallypoint,
}
