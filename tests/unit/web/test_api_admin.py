"""Account administration: admins only, validated, audited; disabling revokes tokens."""

from __future__ import annotations

import asyncio

import msgspec

from rallypoint.security.users import Role
from tests.unit.web.test_api_harness import PASSWORD, Harness, harness_fixture  # noqa: F401


def test_non_admins_get_403_and_anonymous_401(harness: Harness) -> None:
    harness.add_user("alice", {"A"}, role=Role.APPROVER)
    alice = harness.bearer("alice")
    calls = [
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", {"name": "eve", "groups": ["A"]}),
        ("PATCH", "/api/admin/users/alice", {"role": "admin"}),
        ("DELETE", "/api/admin/users/alice/tokens", None),
    ]
    for method, path, body in calls:
        assert harness.http.request(method, path, headers=alice, json=body).status_code == 403, path
        assert harness.http.request(method, path, json=body).status_code == 401, path
    user = asyncio.run(harness.users.get("alice"))
    assert user is not None and user.role == Role.APPROVER
    assert asyncio.run(harness.users.get("eve")) is None


def test_admin_creates_lists_and_changes_accounts(harness: Harness) -> None:
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    root = harness.bearer("root")
    created = harness.http.post("/api/admin/users", headers=root, json={
        "name": "carol", "role": "member", "groups": ["A"], "groups_out": ["Watch"], "password": PASSWORD,
    })
    assert created.status_code == 201, created.text
    assert created.json()["groups_in"] == ["A"] and created.json()["groups_out"] == ["A", "Watch"]
    assert created.json()["has_password"] is True and "password" not in created.json()
    names = [u["name"] for u in harness.http.get("/api/admin/users", headers=root).json()]
    assert names == ["carol", "root"]
    assert harness.http.post("/api/admin/users", headers=root, json={"name": "carol"}).status_code == 409
    carol = harness.bearer("carol")
    changed = harness.http.patch("/api/admin/users/carol", headers=root, json={"groups": ["B"], "role": "approver"})
    assert changed.status_code == 200
    assert changed.json()["groups_in"] == ["B"] and changed.json()["role"] == "approver"
    disabled = harness.http.patch("/api/admin/users/carol", headers=root, json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert harness.http.get("/api/clients", headers=carol).status_code == 401
    assert harness.http.post("/api/auth/token", auth=("carol", PASSWORD)).status_code == 401
    assert harness.ctx.accounts.access_for("carol") is None  # the node's cache already agrees
    enabled = harness.http.patch("/api/admin/users/carol", headers=root, json={"disabled": False})
    assert enabled.status_code == 200
    # Disabling revoked the old token for good.
    assert harness.http.get("/api/clients", headers=carol).status_code == 401
    actions = harness.auditor.actions()
    for action in ("admin.user.add", "admin.user.role", "admin.user.groups", "admin.user.disable",
                   "admin.user.enable"):
        assert action in actions, action


def test_admin_input_is_validated(harness: Harness) -> None:
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    root = harness.bearer("root")
    bad = [
        {"name": "bad name/x", "groups": ["A"]},
        {"name": "dave", "role": "god"},
        {"name": "dave", "groups": [" padded"]},
        {"name": "dave", "groups": [""]},
        {"name": "dave", "surprise": True},
        {"name": ""},
    ]
    for body in bad:
        answer = harness.http.post("/api/admin/users", headers=root, json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert harness.http.patch("/api/admin/users/ghost", headers=root, json={"disabled": True}).status_code == 404
    assert harness.http.patch("/api/admin/users/root", headers=root, json={"role": "x"}).status_code == 422
    assert [u["name"] for u in harness.http.get("/api/admin/users", headers=root).json()] == ["root"]


def test_admin_removes_accounts_lists_groups_and_changes_roles(harness: Harness) -> None:
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    harness.add_user("alice", {"A"})
    harness.add_user("watcher", set())
    asyncio.run(harness.users.set_groups("watcher", groups_in={"A", "B"}, groups_out=set()))
    harness.rebuild(settings=msgspec.structs.replace(harness.ctx.settings, client_groups={"cam-1": ("Cams", "A")}))
    root, alice = harness.bearer("root"), harness.bearer("alice")

    groups = harness.http.get("/api/admin/groups", headers=root)
    assert groups.status_code == 200, groups.text
    assert groups.json() == [
        {"name": "A", "readers": ["alice", "watcher"], "writers": ["alice"], "certificates": ["cam-1"]},
        {"name": "B", "readers": ["watcher"], "writers": [], "certificates": []},
        {"name": "Cams", "readers": [], "writers": [], "certificates": ["cam-1"]},
        {"name": "Ops", "readers": ["root"], "writers": ["root"], "certificates": []},
    ]
    assert harness.http.get("/api/admin/groups", headers=alice).status_code == 403

    promoted = harness.http.patch("/api/admin/users/alice", headers=root, json={"role": "approver"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "approver"

    assert harness.http.delete("/api/admin/users/root", headers=root).status_code == 409
    assert harness.http.delete("/api/admin/users/nobody", headers=root).status_code == 404
    assert harness.http.delete("/api/admin/users/alice", headers=alice).status_code == 403
    removed = harness.http.delete("/api/admin/users/alice", headers=root)
    assert removed.status_code == 200 and removed.json()["disabled"] is True
    assert harness.http.get("/api/clients", headers=alice).status_code == 401  # its tokens died with it
    assert harness.http.post("/api/auth/token", auth=("alice", PASSWORD)).status_code == 401
    assert "admin.user.remove" in harness.auditor.actions()
