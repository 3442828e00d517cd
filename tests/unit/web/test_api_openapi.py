"""The OpenAPI document describes every route and validates; the docs page needs no network."""

from __future__ import annotations

import re

import pytest

from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def test_openapi_document_covers_the_route_table_and_validates(harness: Harness) -> None:
    answer = harness.http.get("/api/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert doc["openapi"] == "3.1.0"
    for endpoint in harness.api.endpoints:
        assert endpoint.method.lower() in doc["paths"][endpoint.path], endpoint.path
    chat = doc["paths"]["/api/chat"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatRequest"}
    assert doc["components"]["schemas"]["ChatRequest"]["required"] == ["text"]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "basic", "mutualTLS"}
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


def test_docs_page_links_the_schema_without_external_assets(harness: Harness) -> None:
    page = harness.http.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/api/openapi.json"' in page.text
    assert "/api/auth/token" in page.text
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", page.text)


def test_non_json_bodies_and_answers_are_described(harness: Harness) -> None:
    doc = harness.http.get("/api/openapi.json").json()
    upload = doc["paths"]["/api/packages"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream", "multipart/form-data"}
    assert {"201", "200", "413"} <= set(upload["responses"])
    download = doc["paths"]["/api/packages/{hash}/content"]["get"]["responses"]["200"]["content"]
    assert download == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    history = doc["paths"]["/api/history"]["get"]
    assert "cursor" in {p["name"] for p in history["parameters"]}
    assert "next" in doc["components"]["schemas"]["HistoryPage"]["properties"]
    for path, method in (("/api/missions", "post"), ("/api/missions/{name}/subscription", "put"),
                         ("/api/missions/{name}/contents", "post"), ("/api/missions/{name}/changes", "get"),
                         ("/api/emergencies", "post"), ("/api/admin/groups", "get"),
                         ("/api/admin/users/{name}", "delete"), ("/api/packages/{hash}", "delete")):
        assert method in doc["paths"][path], (method, path)


def test_geojson_answers_are_described(harness: Harness) -> None:
    doc = harness.http.get("/api/openapi.json").json()
    content = doc["paths"]["/api/tracks"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "application/geo+json"}
