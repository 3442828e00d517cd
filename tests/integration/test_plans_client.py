"""The Python client's plan methods against the real server, with accounts: alice plans, bob is in another group.

Every stored version is also in the hash-chained audit log, which still verifies.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest

from rallypoint.client import ApiError, RallypointClient
from tests.support.accounts import PASSWORDS, audit_entries
from tests.support.server import ServerProcess

AREA = {"id": "sector-a", "name": "Sector A", "vertices": [
    {"lat": 39.0, "lon": -120.0}, {"lat": 39.0, "lon": -119.98}, {"lat": 39.02, "lon": -119.98}]}


def test_plan_methods_of_the_python_client(api_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    with (RallypointClient(base, username="alice", password=PASSWORDS["alice"]) as api,
          RallypointClient(base, username="bob", password=PASSWORDS["bob"]) as bob):
        api.create_mission("Bridge")
        first = api.replace_plan("Bridge", {"areas": [AREA]}, "first draft")
        assert (first["version"], first["author"]) == (1, "alice")
        api.edit_plan("Bridge", "sector B too", upsert={"areas": [{**AREA, "id": "sector-b"}]})
        third = api.edit_plan("Bridge", "sector A done", remove=["sector-a"], base_version=2)
        assert [a["id"] for a in third["plan"]["areas"]] == ["sector-b"]
        with pytest.raises(ApiError) as stale:
            api.edit_plan("Bridge", "late", remove=["sector-b"], base_version=2)
        assert stale.value.status == 409
        assert api.plan("Bridge")["version"] == 3
        assert [v["reason"] for v in api.plan_versions("Bridge")] == ["first draft", "sector B too", "sector A done"]
        diff = api.plan_diff("Bridge", 1, 3)
        assert [r["id"] for r in diff["added"]] == ["sector-b"] and [r["id"] for r in diff["removed"]] == ["sector-a"]
        assert api.revert_plan("Bridge", 1, "back to the first draft")["plan"] == first["plan"]
        package = api.export_plan("Bridge", format="datapackage")
        with zipfile.ZipFile(io.BytesIO(package)) as zf:
            assert "MANIFEST/manifest.xml" in zf.namelist()
        restored = api.import_plan("Bridge", package, format="datapackage", replace=True, reason="restored")
        assert restored["version"] == 5 and restored["plan"] == first["plan"]
        assert api.publish_plan("Bridge")["sent"] == 1  # the one area, to the subscribers (alice's API uid)
        # bob reads group B only: the mission (group A) does not exist for him.
        with pytest.raises(ApiError) as hidden:
            bob.plan("Bridge")
        assert hidden.value.status == 404
    api_server.stop()
    entries = [(e.actor, e.action, e.target, e.detail.get("version"), e.detail.get("reason"))
               for e in audit_entries(api_server.data_dir) if e.action.startswith("plan.")]
    assert entries == [
        ("alice", "plan.change", "Bridge", "1", "first draft"),
        ("alice", "plan.change", "Bridge", "2", "sector B too"),
        ("alice", "plan.change", "Bridge", "3", "sector A done"),
        ("alice", "plan.revert", "Bridge", "4", "back to the first draft"),
        ("alice", "plan.import", "Bridge", "5", "restored"),
    ]
    verify = subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "audit", "verify",
                             "--data-dir", str(api_server.data_dir)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
