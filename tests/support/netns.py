"""Two network namespaces joined by a veth pair, for tests over an impaired link.

Needs root and iproute2. Servers run inside a namespace with ``ip netns exec``; the test process
reaches them with sockets created in a short-lived thread that joined the namespace (``setns``
changes only the calling thread, and a socket keeps the namespace it was created in).
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.server import READY_TIMEOUT_S, ServerProcess

IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"
CLONE_NEWNET = 0x40000000
SUBNET = "10.231.7"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (None when they can)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not Path(IP).exists():
        return "iproute2 (ip) is not installed"
    probe = f"rpprobe{os.getpid()}"
    made = _run(IP, "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _run(IP, "netns", "del", probe, check=False)
    return None


class VethLink:
    """Namespaces ``ns1`` (``10.231.7.1``) and ``ns2`` (``10.231.7.2``) joined by ``veth1``/``veth2``."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns1, self.ns2 = f"rp1-{tag}", f"rp2-{tag}"
        self.dev1, self.dev2 = f"rpa{tag}", f"rpb{tag}"
        self.addr1, self.addr2 = f"{SUBNET}.1", f"{SUBNET}.2"
        self._made: list[str] = []

    def __enter__(self) -> VethLink:
        try:
            for ns in (self.ns1, self.ns2):
                _run(IP, "netns", "add", ns)
                self._made.append(ns)
                _run(IP, "-n", ns, "link", "set", "lo", "up")
            _run(IP, "link", "add", self.dev1, "netns", self.ns1, "type", "veth", "peer", "name", self.dev2,
                 "netns", self.ns2)
            for ns, dev, addr in ((self.ns1, self.dev1, self.addr1), (self.ns2, self.dev2, self.addr2)):
                _run(IP, "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _run(IP, "-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete both namespaces (the veth pair goes with them); safe to call twice."""
        while self._made:
            _run(IP, "netns", "del", self._made.pop(), check=False)

    # Impairments ---------------------------------------------------------------------------------
    def netem_available(self) -> bool:
        """Whether the kernel has the netem qdisc (probed on ``veth1``, then removed)."""
        if not Path(TC).exists():
            return False
        ok = _run(IP, "netns", "exec", self.ns1, TC, "qdisc", "add", "dev", self.dev1, "root", "netem",
                  "delay", "1ms", check=False).returncode == 0
        if ok:
            self.clear()
        return ok

    def netem(self, *args: str) -> None:
        """Apply ``tc ... netem ARGS`` to both directions of the link."""
        for ns, dev in ((self.ns1, self.dev1), (self.ns2, self.dev2)):
            _run(IP, "netns", "exec", ns, TC, "qdisc", "replace", "dev", dev, "root", "netem", *args)

    def clear(self) -> None:
        """Remove any qdisc added by :meth:`netem`."""
        for ns, dev in ((self.ns1, self.dev1), (self.ns2, self.dev2)):
            _run(IP, "netns", "exec", ns, TC, "qdisc", "del", "dev", dev, "root", check=False)

    def set_up(self, up: bool) -> None:
        """Cut (``False``) or restore (``True``) the link: both ends down or up."""
        for ns, dev in ((self.ns1, self.dev1), (self.ns2, self.dev2)):
            _run(IP, "-n", ns, "link", "set", dev, "up" if up else "down")

    # Reaching into a namespace -------------------------------------------------------------------
    def prefix(self, ns: str) -> list[str]:
        """Command prefix that runs a program inside ``ns``."""
        return [IP, "netns", "exec", ns]


def connect_in(ns: str, host: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP socket connected from inside namespace ``ns``."""
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            result.append(socket.create_connection((host, port), timeout=timeout))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)
        finally:
            os.close(fd)

    # A fresh thread each time: its namespace change dies with it.
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if not result:
        raise TimeoutError(f"connect to {host}:{port} in {ns} timed out")
    got = result[0]
    if isinstance(got, BaseException):
        raise got
    got.settimeout(None)
    return got


def get_json_in(ns: str, port: int, path: str) -> Any:
    """GET ``http://127.0.0.1:port/path`` inside ``ns`` and decode the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.sock = connect_in(ns, "127.0.0.1", port)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return json.loads(resp.read())
    finally:
        conn.close()


class NsServerProcess(ServerProcess):
    """A :class:`ServerProcess` started inside a namespace; TLS and federation bind to every address."""

    def __init__(self, ns: str, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, *extra, env=env)
        self.ns = ns

    def start(self) -> None:
        args = [
            IP, "netns", "exec", self.ns, sys.executable, "-m", "rallypoint.cli.main", "serve",
            "--data-dir", str(self.data_dir),
            "--bind", "0.0.0.0", "--plain-bind", "127.0.0.1",
            "--cot-port", "1", "--tls-port", "1", "--api-port", "1", "--http-port", "1",
            "--enroll-port", "1", "--federation-port", "0", "--udp-port", "1",
            "--log-format", "json", *self.extra,
        ]
        env = {**os.environ, **self.env, "RALLYPOINT_EPHEMERAL_PORTS": "1"}
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.get("msg") == "rallypoint ready":
                    self.ports = {k: int(v) for k, v in line["ports"].items()}
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited before ready: {self.tail()}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"server not ready within {READY_TIMEOUT_S}s: {self.tail()}")

    def kill(self) -> None:
        """``kill -9``: no goodbye, no flush (``ip netns exec`` execs, so the pid is the server's)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
