"""The OpenAPI document cannot drift from the app: every route is in it or named below with the
reason, its limits and enums come from the code and the settings, and the committed snapshot
docs/openapi.json is the document the code builds."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from service.domain.access import Role
from service.domain.model import Action, ModeratorReason, ReasonCode
from service.entrypoints.http import errors
from service.entrypoints.http.app import build_app
from service.entrypoints.http.keys import OPENAPI
from service.entrypoints.http.openapi import document, rendered
from service.entrypoints.http.openapi.errors import ERROR_CODES
from service.settings import DEFAULT_MAX_TEXT_CHARS, Settings
from service.usecases.perspective.protocol import HTML_TEXT_FACTOR, Attribute
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore
from tests.http_helpers import ROOT, bearer, registry

ROOT_DIR: Final = Path(__file__).resolve().parents[4]
SNAPSHOT: Final = ROOT_DIR / "docs" / "openapi.json"

# Routes the app serves that the document leaves out on purpose, each with the reason.
UNDOCUMENTED: Final = {
    ("GET", "/"): "the moderator page: HTML for browsers, not part of the JSON API",
    ("HEAD", "/"): "the moderator page (HEAD of it)",
    ("GET", "/static"): "the page's own scripts and styles, files served as they are",
    ("HEAD", "/static"): "the page's files (HEAD of them)",
    ("GET", "/metrics"): "Prometheus' text exposition format, for the scraper, not JSON",
}


def _app(**options: Any) -> web.Application:
    service = ReviewService(InMemoryReviewStore(), FixedClock(), decisions_topic="decisions")
    return build_app(service, registry(), metrics=CollectorRegistry(), **options)


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method != "parameters"
    }


def test_every_route_is_documented_or_named_as_undocumented() -> None:
    served = _served(_app())
    assert set(UNDOCUMENTED) <= served, "UNDOCUMENTED names a route the app no longer serves"
    assert served - set(UNDOCUMENTED) == _documented(document())


def test_the_integration_routes_are_in_the_document() -> None:
    paths = document()["paths"]
    coral = paths["/integrations/coral/moderation"]["post"]
    assert coral["security"] == []  # signed, no bearer token
    assert [p["name"] for p in coral["parameters"]] == ["X-Coral-Signature"]
    assert set(coral["responses"]) == {"200", "204", "400", "401", "404", "413", "503"}
    for path in ("/v1alpha1/comments:analyze", "/v1alpha1/comments:suggestscore"):
        operation = paths[path]["post"]
        assert operation["security"] == [{"perspectiveKey": []}, {"perspectiveKeyHeader": []}]
        errors_given = {k: v for k, v in operation["responses"].items() if k != "200"}
        assert errors_given, path
        # every error of the Perspective routes is in Google's shape, none in ours
        assert {r["$ref"] for r in errors_given.values()} == {
            f"#/components/responses/G{status}" for status in errors_given
        }


def test_the_document_is_valid_openapi_json_schema() -> None:
    doc = document()
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert "$id" not in schema, name
    # every $ref points at something the document holds
    refs = set(_refs(doc))
    assert refs, "the document refers to no component"
    for target in refs:
        section, _, name = target.removeprefix("#/components/").partition("/")
        assert name in doc["components"][section], target


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _limits(doc: dict[str, Any]) -> tuple[int, int]:
    schemas = doc["components"]["schemas"]
    moderate = schemas["CommentEvent"]["properties"]["text"]["maxLength"]
    analyze = schemas["AnalyzeCommentRequest"]["properties"]["comment"]["properties"]["text"]
    suggest = schemas["SuggestCommentScoreRequest"]["properties"]["comment"]["properties"]["text"]
    assert analyze == suggest
    assert f"at most {moderate} characters" in analyze["description"]
    return moderate, analyze["maxLength"]


async def test_the_text_limit_follows_moderation_max_text_chars(tmp_path: Path) -> None:
    default = Settings.from_env({}, cwd=tmp_path).max_text_chars
    assert _limits(document()) == (default, default * HTML_TEXT_FACTOR)

    settings = Settings.from_env({"MODERATION_MAX_TEXT_CHARS": "1234"}, cwd=tmp_path)
    async with TestClient(TestServer(_app(max_text_chars=settings.max_text_chars))) as client:
        response = await client.get("/api/v1/openapi.json", headers=bearer(ROOT))
        served = await response.json()
    assert _limits(served) == (1234, 1234 * HTML_TEXT_FACTOR)
    assert default == DEFAULT_MAX_TEXT_CHARS
    assert settings.max_text_chars != default


def test_enums_come_from_the_domain() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    me = doc["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]
    assert me["schema"]["properties"]["role"]["enum"] == [r.value for r in Role]
    codes = {*(c.value for c in ReasonCode), *(r.value for r in ModeratorReason)}
    assert set(schemas["Reason"]["properties"]["code"]["enum"]) == codes
    decision = schemas["DecisionEvent"]["properties"]
    assert set(decision["reasons"]["items"]["properties"]["code"]["enum"]) == codes
    # the shipped event schema and the domain agree on the actions
    assert decision["action"]["enum"] == [a.value for a in Action]
    assert schemas["HistoryEntry"]["properties"]["action"]["enum"] == [a.value for a in Action]
    analyze = schemas["AnalyzeCommentRequest"]["properties"]["requestedAttributes"]
    assert list(analyze["properties"]) == [a.value for a in Attribute]
    google = schemas["GoogleError"]["properties"]["error"]["properties"]
    assert set(google["code"]["enum"]) == set(errors.GOOGLE_STATUS)


_RAISERS: Final = {"ApiError": 1, "AccessDenied": 0, "error_response": 1}


def _raised_codes(path: Path) -> set[str]:
    """The error codes a module passes to ApiError, AccessDenied and error_response."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        where = _RAISERS.get(node.func.id)
        if where is not None and len(node.args) > where:
            arg = node.args[where]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def test_every_error_code_the_api_answers_with_is_in_the_document() -> None:
    modules = [*sorted((ROOT_DIR / "service" / "entrypoints" / "http").glob("*.py"))]
    modules.append(ROOT_DIR / "service" / "entrypoints" / "serve" / "front.py")
    modules.append(ROOT_DIR / "service" / "usecases" / "review_service.py")
    raised = set().union(*(_raised_codes(m) for m in modules))
    assert {"invalid_json", "invalid_signature", "forbidden_role", "internal_error"} <= raised
    from_tables = {*errors.HTTP_CODES.values(), *(code for _, _, code in errors._DOMAIN)}
    assert raised | from_tables | {"http_error"} == set(ERROR_CODES)
    bulk = document()["components"]["schemas"]["BulkResult"]["properties"]["error"]
    assert set(bulk["oneOf"][0]["properties"]["code"]["enum"]) <= set(ERROR_CODES)


def test_the_committed_snapshot_is_the_generated_document() -> None:
    generated = rendered(document())
    committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    assert committed == generated, (
        "docs/openapi.json differs from the document the code builds: run `make openapi` "
        "and commit docs/openapi.json"
    )
    assert json.loads(committed) == document()


@pytest.mark.parametrize("max_text_chars", [1, DEFAULT_MAX_TEXT_CHARS])
def test_the_served_document_is_the_built_one(max_text_chars: int) -> None:
    app = _app(max_text_chars=max_text_chars)
    assert json.loads(app[OPENAPI]) == document(max_text_chars=max_text_chars)
