"""Native API validation answers name the field and what it accepts, not the decoder's wording."""

from __future__ import annotations

from rallypoint.security.users import Role
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def test_invalid_bodies_are_explained_in_our_words(harness: Harness) -> None:
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    root = harness.bearer("root")
    cases = (
        ({"name": "carol", "role": "boss"}, "role must be one of: "),
        ({"name": "carol", "groups": "A"}, "groups must be a list (got 'A')"),
        ({"name": "carol", "colour": "red"}, "colour is not a known field"),
        ({"role": "member"}, "name is required"),
    )
    for body, words in cases:
        answer = harness.http.post("/api/admin/users", headers=root, json=body)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert words in detail, (body, detail)
        assert "`" not in detail and "Expected" not in detail and "$." not in detail, detail
    role = harness.http.post("/api/admin/users", headers=root, json={"name": "carol", "role": "boss"}).json()
    assert sorted(role["detail"].split(": ", 1)[1].split(" (got")[0].split(", ")) == ["admin", "approver", "member"]

    json_headers = {**root, "content-type": "application/json"}
    broken = harness.http.post("/api/admin/users", headers=json_headers, content=b'{"name": carol}')
    assert broken.status_code == 400
    assert broken.json() == {"error": "bad_json", "detail": "the body is not valid JSON (error at byte 9)"}
    cut = harness.http.post("/api/admin/users", headers=json_headers, content=b'{"name": "carol",')
    assert cut.json() == {"error": "bad_json", "detail": "the body is not valid JSON"}
    # A document of the wrong type that is not JSON either is a JSON error, not a crash.
    wrong_and_broken = harness.http.post("/api/admin/users", headers=json_headers, content=b"[carol")
    assert wrong_and_broken.status_code == 400
    assert wrong_and_broken.json() == {"error": "bad_json", "detail": "the body is not valid JSON (error at byte 1)"}
