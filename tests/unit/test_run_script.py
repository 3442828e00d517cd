"""./run tells the user what it is doing while it creates the venv and installs on first use."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A stand-in interpreter: `-m venv DIR` makes DIR/bin/python (this same script) and a fake
# rallypoint entry point; `-m pip ...` only records its arguments.
FAKE_PYTHON = """#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cp "$0" "$3/bin/python"
  printf '#!/bin/sh\\necho "rallypoint $*"\\n' > "$3/bin/rallypoint"
  chmod +x "$3/bin/python" "$3/bin/rallypoint"
  exit 0
fi
echo "$*" >> "$here/../pip.log"
"""


def _run(workdir: Path, python: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": str(python)}
    return subprocess.run(
        ["sh", str(workdir / "run"), "version"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_first_run_announces_venv_and_install_then_stays_quiet(tmp_path: Path) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    shutil.copy(ROOT / "run", work / "run")
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    python = tmp_path / "fakepython"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)

    first = _run(work, python)
    assert first.stdout == "rallypoint version\n"  # progress never pollutes command output
    assert "creating .venv" in first.stderr
    assert "installing rallypoint and test dependencies" in first.stderr
    assert "install done" in first.stderr
    pip_calls = (work / ".venv" / "pip.log").read_text()
    assert "-q" not in pip_calls.split()  # pip shows its own progress
    assert "install -e .[test]" in pip_calls

    second = _run(work, python)
    assert second.stderr == ""
    assert second.stdout == "rallypoint version\n"


def test_test_command_is_unchanged() -> None:
    text = (ROOT / "run").read_text()
    block = text.split("  test)", 1)[1].split(";;", 1)[0]
    lines = [line.strip() for line in block.strip().splitlines()]
    assert lines == [
        '"$VENV/bin/ruff" check src tests bench',
        '"$VENV/bin/mypy"',
        '"$VENV/bin/lint-imports"',
        'exec "$VENV/bin/pytest" -n 3 "$@"',
    ]
