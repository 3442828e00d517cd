"""`rallypoint audit verify` and `rallypoint audit list`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from rallypoint.cli.audit import audit_app
from rallypoint.cli.users import user_app

runner = CliRunner()


def _make_log(data_dir: Path) -> None:
    for name in ("amy", "bob", "cat"):
        assert runner.invoke(user_app, ["add", name, "--data-dir", str(data_dir)]).exit_code == 0


def test_verify_ok(tmp_path: Path) -> None:
    _make_log(tmp_path)
    result = runner.invoke(audit_app, ["verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "audit log OK: 3 entries"


def test_verify_reports_tampering_and_exits_1(tmp_path: Path) -> None:
    _make_log(tmp_path)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("UPDATE audit SET target = 'mallory' WHERE seq = 2")
    result = runner.invoke(audit_app, ["verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "seq 2: hash mismatch" in result.output


def test_verify_without_a_log_fails(tmp_path: Path) -> None:
    result = runner.invoke(audit_app, ["verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert not (tmp_path / "audit.db").exists()


def test_list_json_since(tmp_path: Path) -> None:
    _make_log(tmp_path)
    result = runner.invoke(audit_app, ["list", "--since-seq", "1", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["seq"], r["action"], r["target"]) for r in rows] == [(2, "user.add", "bob"), (3, "user.add", "cat")]
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_list_text(tmp_path: Path) -> None:
    _make_log(tmp_path)
    result = runner.invoke(audit_app, ["list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "user.add amy" in lines[0] and "password=none" in lines[0]
