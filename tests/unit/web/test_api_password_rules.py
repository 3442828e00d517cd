"""The admin API applies the account password rules and says which rule a password broke."""

from __future__ import annotations

import asyncio

from rallypoint.security.users import Role
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def test_admin_create_refuses_weak_passwords_with_the_rule(harness: Harness) -> None:
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    root = harness.bearer("root")
    for password, words in (("short-pw", "at least 12 characters"), ("Password1234", "commonly used")):
        answer = harness.http.post("/api/admin/users", headers=root, json={"name": "carol", "password": password})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error"] == "weak_password" and words in body["detail"], body
    assert asyncio.run(harness.users.get("carol")) is None
    body = {"name": "carol", "password": "violet harbour kettle"}
    good = harness.http.post("/api/admin/users", headers=root, json=body)
    assert good.status_code == 201, good.text
