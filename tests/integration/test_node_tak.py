"""node-tak's own login against the real server (how CloudTAK and node-tak tools authenticate).

node-tak (``tests/interop/node``, version pinned by its ``package-lock.json``) logs in with
``POST /oauth/token``, decodes the JWT's claims itself, then calls the Marti API with the token as
the ``access_token`` cookie. The package is installed once into ``.cache/interop-node`` with
``npm ci`` (offline first, from npm's cache); without Node.js and npm, or when the install fails
(no network and no cache), the tests are skipped and say why. Nothing is fetched while they run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support.accounts import run_cli
from tests.support.server import ServerProcess

SOURCE = Path(__file__).resolve().parent.parent / "interop" / "node"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "interop-node"
FILES = ("package.json", "package-lock.json", "login.mjs")
PASSWORD = "alice passphrase 1"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60


def _install() -> Path:
    """The installed project directory, or a skip naming what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-tak interop needs Node.js and npm on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256(b"".join((SOURCE / f).read_bytes() for f in FILES)).hexdigest()
    # One install at a time, whichever test worker gets here first.
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = CACHE / ".installed"
        if done.exists() and done.read_text() == stamp and (CACHE / "node_modules").is_dir():
            return CACHE
        for name in FILES:
            shutil.copyfile(SOURCE / name, CACHE / name)
        failures = []
        for offline in (True, False):
            args = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", *(["--offline"] if offline else [])]
            try:
                result = subprocess.run(args, cwd=CACHE, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                failures.append(f"{' '.join(args[1:])}: timed out")
                continue
            if result.returncode == 0:
                done.write_text(stamp)
                return CACHE
            failures.append(f"{' '.join(args[1:])}: {result.stderr.strip().splitlines()[-1:]}")
        pytest.skip(f"cannot install node-tak: {failures}")


@pytest.fixture(scope="module")
def node_tak() -> Path:
    return _install()


@pytest.fixture
def tak_server(data_dir: Path) -> Iterator[ServerProcess]:
    run_cli(data_dir, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORD + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


def _login(project: Path, server: ServerProcess, url: str, password: str, then: str) -> dict[str, object]:
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(server.data_dir / "ca" / "ca.pem")}
    result = subprocess.run(["node", "login.mjs", url, "alice", password, then], cwd=project, env=env,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return doc


def test_node_tak_logs_in_and_enrolls_a_certificate(node_tak: Path, tak_server: ServerProcess) -> None:
    url = f"https://127.0.0.1:{tak_server.ports['enroll']}"
    got = _login(node_tak, tak_server, url, PASSWORD, "certificate")
    assert got["ok"] is True, got
    claims = got["claims"]
    assert isinstance(claims, dict) and claims["sub"] == "alice" and claims["exp"] > claims["iat"]
    assert "certificateConfig" in str(got["config"])
    cert = x509.load_pem_x509_certificate(str(got["certificate"]).encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"

    refused = _login(node_tak, tak_server, url, "wrong", "certificate")
    assert refused["ok"] is False and refused["safe"] == "TAK Server reports incorrect Username or Password"
    assert "Bad credentials" in str(refused["message"])


def test_node_tak_lists_packages_with_the_token(node_tak: Path, tak_server: ServerProcess) -> None:
    import httpx

    base = f"http://127.0.0.1:{tak_server.ports['http']}"
    token = httpx.post(f"{base}/oauth/token", data={"grant_type": "password", "username": "alice",
                                                     "password": PASSWORD}).json()["access_token"]
    uploaded = httpx.post(f"{base}/Marti/sync/upload", params={"name": "notes.txt", "creatorUid": "ANDROID-1"},
                          content=b"field notes", headers={"Authorization": f"Bearer {token}",
                                                           "Content-Type": "text/plain"})
    assert uploaded.status_code == 200, uploaded.text
    got = _login(node_tak, tak_server, base, PASSWORD, "packages")
    # node-tak JSON.parse()s the search answer's text: only TAK Server's charset-qualified type works.
    assert got["ok"] is True, got
    packages = got["packages"]
    assert isinstance(packages, dict) and packages["resultCount"] == 1
    assert packages["results"][0]["Size"] == "11" and packages["results"][0]["CreatorUid"] == "ANDROID-1"
