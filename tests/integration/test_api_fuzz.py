"""Property-based fuzzing of the native API from its own OpenAPI document.

No input may cause a 5xx, and every answer must match the document: a documented status code, the
documented content type and a body valid against the response schema.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.accounts import PASSWORDS
from tests.support.server import ServerProcess

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")

from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25
# Revoking the fuzzer's own token would turn the rest of the run into 401s.
SKIPPED = {("DELETE", "/api/auth/token")}


def test_no_generated_request_causes_a_server_error(api_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    answer = httpx.post(f"{base}/api/auth/token", auth=("root", PASSWORDS["root"]), timeout=10)
    assert answer.status_code == 200
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    failures: list[str] = []
    statuses: dict[int, int] = {}
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        ran += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case: object) -> None:
            response = case.call(base_url=base, headers=headers, timeout=10)  # type: ignore[attr-defined]
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"  # type: ignore[attr-defined]
            if response.status_code >= 500:
                failures.append(f"{where}: {response.text[:200]}")
            try:
                case.validate_response(response, checks=CHECKS)  # type: ignore[attr-defined]
            except FailureGroup as exc:
                failures.append(f"{where}: {'; '.join(f.title for f in exc.exceptions)}")

        fuzz()
    assert ran >= 30
    assert any(200 <= status < 300 for status in statuses), statuses  # the token worked: handlers were reached
    assert not failures, "\n".join(sorted(set(failures))[:40])
    assert not [line for line in api_server.lines if line.get("level") in ("error", "critical")]
