"""The REST gateway's OpenAPI document stays in step with proto/caxton/v1: every RPC has a
route or is listed as not exposed, and every schema has its message's fields, read from
the protobuf descriptors the .proto files compile to (not from the code that made it)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FileDescriptorSet
from grpclib.const import Status
from jsonschema import Draft202012Validator

from caxton.shell.api.codegen import DESCRIPTORS
from caxton.shell.api.errors import HTTP_STATUS_OF
from caxton.shell.rest import NOT_EXPOSED, OPERATIONS
from caxton.shell.rest.openapi import openapi_document

PACKAGE = "caxton.v1"
F = FieldDescriptorProto
SIXTY_FOUR = {F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_SINT64, F.TYPE_FIXED64, F.TYPE_SFIXED64}
THIRTY_TWO = {F.TYPE_INT32, F.TYPE_UINT32, F.TYPE_SINT32, F.TYPE_FIXED32, F.TYPE_SFIXED32}
GATEWAY_SCHEMAS = {"Problem"}
"""Schemas of the gateway's own, with no message behind them."""


def _files() -> list[Any]:
    protoset = files("caxton.shell.api.generated").joinpath(DESCRIPTORS).read_bytes()
    return [f for f in FileDescriptorSet.FromString(protoset).file if f.package == PACKAGE]


RPCS = {f"{s.name}.{m.name}" for f in _files() for s in f.service for m in s.method}
MESSAGES = {m.name: m for f in _files() for m in f.message_type}
DOCUMENT = openapi_document(OPERATIONS)
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]


def test_every_rpc_has_a_route_or_is_listed_as_not_exposed() -> None:
    routed = {o.rpc for o in OPERATIONS if o.rpc}
    assert routed | set(NOT_EXPOSED) == RPCS
    assert not routed & set(NOT_EXPOSED)


def test_no_two_operations_share_a_method_and_path() -> None:
    pairs = [(o.method, o.path) for o in OPERATIONS]
    assert len(pairs) == len(set(pairs))
    assert all(o.path.startswith("/api/v1/") for o in OPERATIONS)


def test_there_is_a_schema_for_each_message_and_none_for_a_message_that_is_gone() -> None:
    assert set(SCHEMAS) == set(MESSAGES) | GATEWAY_SCHEMAS


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_schema_has_its_messages_fields_under_their_json_names(name: str) -> None:
    schema = SCHEMAS[name]
    fields = {f.json_name: f for f in MESSAGES[name].field}
    assert set(schema["properties"]) == set(fields)
    assert schema["additionalProperties"] is False
    for json_name, field in fields.items():
        shown = schema["properties"][json_name]
        if field.label == F.LABEL_REPEATED:
            assert shown["type"] == "array", json_name
            shown = shown["items"]
        assert _kind(shown) == _expected(field), f"{name}.{json_name}"


def _expected(field: Any) -> str:
    if field.type == F.TYPE_MESSAGE:
        return "ref:" + field.type_name.rsplit(".", 1)[-1]
    if field.type in SIXTY_FOUR:
        return "int64-as-text-or-number"
    if field.type in THIRTY_TWO:
        return "integer"
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return "number"
    return {F.TYPE_STRING: "string", F.TYPE_BOOL: "boolean", F.TYPE_BYTES: "base64"}[field.type]


def _kind(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return "ref:" + schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        types = {s["type"] for s in schema["anyOf"]}
        if types == {"string", "integer"}:
            return "int64-as-text-or-number"
        if types == {"number", "string"}:
            return "number"
    if schema.get("contentEncoding") == "base64":
        return "base64"
    return str(schema["type"])


def test_every_schema_is_valid_json_schema_and_every_reference_resolves() -> None:
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    references = set(_references(DOCUMENT))
    assert references and references <= {f"#/components/schemas/{n}" for n in SCHEMAS}


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_each_routed_rpc_names_its_request_fields_as_query_parameters_of_that_message() -> None:
    requests = {
        f"{s.name}.{m.name}": m.input_type.rsplit(".", 1)[-1]
        for f in _files()
        for s in f.service
        for m in s.method
    }
    for operation in OPERATIONS:
        if not operation.rpc or not operation.query:
            continue
        message = MESSAGES[requests[operation.rpc]]
        top = {f.json_name for f in message.field}
        for param in operation.query:
            assert param.name.split(".")[0] in top, (operation.path, param.name)


def test_every_grpc_status_has_the_http_status_of_google_rpc_code() -> None:
    assert set(HTTP_STATUS_OF) == set(Status)
    assert HTTP_STATUS_OF[Status.INVALID_ARGUMENT] == 400
    assert HTTP_STATUS_OF[Status.NOT_FOUND] == 404
    assert HTTP_STATUS_OF[Status.ALREADY_EXISTS] == 409
    assert HTTP_STATUS_OF[Status.RESOURCE_EXHAUSTED] == 429
    assert HTTP_STATUS_OF[Status.UNAVAILABLE] == 503
