"""The OpenAPI 3.1 document of the REST gateway, generated from its operations and the
protobuf messages they carry, and the page at /docs that renders it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from caxton.shell.rest.calls import Operation
from caxton.shell.rest.problems import PROBLEM_JSON
from caxton.shell.rest.reading import QueryParam
from caxton.shell.rest.routes import NOT_EXPOSED
from caxton.shell.rest.schemas import Schema, all_messages, messages_of

PROBLEM: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "The gRPC status code's name."},
        "field": {"type": "string", "description": "The path of the value that was wrong."},
    },
    "required": ["type", "title", "status", "detail"],
}
_PATH_PARAM = re.compile(r"{(\w+)}")


def openapi_document(operations: Iterable[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    schemas = {**messages_of(all_messages()), "Problem": PROBLEM}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Caxton",
            "version": _version(),
            "description": "The REST gateway of a Caxton server: the gRPC API of "
            "proto/caxton/v1 over HTTP and JSON (protobuf's JSON mapping). Not exposed: "
            + "; ".join(f"{rpc} ({why})" for rpc, why in NOT_EXPOSED.items()),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(operation: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": operation.handler.__name__.strip("_"),
        "summary": operation.summary,
        "tags": [operation.path.split("/")[3]],
    }
    if operation.rpc:
        document["description"] = f"gRPC: caxton.v1.{operation.rpc}"
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(operation.path)
    ]
    parameters += [_query(p) for p in operation.query]
    parameters += [
        {"name": name, "in": "header", "description": text, "schema": {"type": "string"}}
        for name, text in operation.headers
    ]
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "description": operation.body.description,
            "content": {kind: {"schema": s} for kind, s in operation.body.content.items()},
        }
    responses: dict[str, Any] = {}
    for answer in operation.answers:
        responses[str(answer.status)] = {"description": answer.description}
        if answer.content:
            responses[str(answer.status)]["content"] = {
                kind: {"schema": s} for kind, s in answer.content.items()
            }
    responses["default"] = {
        "description": "A problem (RFC 9457): the status, what was wrong, the gRPC code",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    document["responses"] = responses
    document["security"] = [] if operation.open else [{"bearer": []}]
    return document


def _query(param: QueryParam) -> dict[str, Any]:
    schema = {"type": "array", "items": param.schema} if param.repeated else param.schema
    found: dict[str, Any] = {"name": param.name, "in": "query", "schema": schema}
    if param.repeated:
        found["explode"] = True
    if param.description:
        found["description"] = param.description
    return found


def _version() -> str:
    try:
        return version("caxton")
    except PackageNotFoundError:  # pragma: no cover - a source tree not installed
        return "0"


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Caxton REST API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
<div id="docs">
  <p>The interactive documentation loads Swagger UI from unpkg.com, which this browser
  cannot reach. The API's description is at <a href="/openapi.json">/openapi.json</a>.</p>
</div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"
        onload="SwaggerUIBundle({url: '/openapi.json', dom_id: '#docs'})"></script>
</body>
</html>
"""
"""Swagger UI from a CDN; offline, a line that points at /openapi.json instead."""
