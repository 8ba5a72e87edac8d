"""Reading a REST request into the API's protobuf messages: query parameters and JSON bodies
checked against the messages' JSON Schemas (a bad value is a 400 naming it), bodies read
no further than the gRPC limit of the same message."""

from __future__ import annotations

import binascii
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import betterproto2
import orjson
from grpclib import GRPCError
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request

from caxton.domain.units import format_size
from caxton.shell.api.limits import RequestLimits
from caxton.shell.rest.problems import Problem
from caxton.shell.rest.schemas import (
    MessageType,
    Schema,
    in_range,
    json_name,
    message_schema,
    proto_fields,
)

M = TypeVar("M", bound=betterproto2.Message)
DOCUMENT = "urn:caxton:openapi"


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One query parameter: its name, the schema of its value, and whether it repeats."""

    name: str
    schema: Schema
    repeated: bool = False
    description: str = ""


def message_params(
    message: MessageType, *, omit: Iterable[str] = (), prefix: str = ""
) -> list[QueryParam]:
    """A message's fields as query parameters under their JSON names (`limits.memoryBytes`
    for a field of a field); `omit` names fields (snake_case) read from elsewhere."""
    properties = message_schema(message)["properties"]
    skipped = set(omit)
    params: list[QueryParam] = []
    for field in proto_fields(message):
        if field.name in skipped:
            continue
        key = json_name(field.name)
        if field.proto_type == "message":
            params += message_params(field.cls, prefix=f"{prefix}{key}.")
        elif field.repeated:
            params.append(QueryParam(f"{prefix}{key}", properties[key]["items"], repeated=True))
        else:
            params.append(QueryParam(f"{prefix}{key}", properties[key]))
    return params


class Reader:
    """Checks request data against the schemas of one OpenAPI document."""

    def __init__(self, document: dict[str, Any], limits: RequestLimits) -> None:
        registry: Registry[Any] = Registry().with_resource(
            DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.limits = limits
        self._registry = registry
        self._formats = _formats()
        self._validators: dict[str, Draft202012Validator] = {}

    def validated(self, data: Any, schema: Schema, where: str = "") -> None:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator(
                _absolute(schema), registry=self._registry, format_checker=self._formats
            )
            self._validators[key] = validator
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            error = errors[0]
            path = list(error.absolute_path)
            if error.validator == "additionalProperties":  # name the stranger itself
                known = error.schema.get("properties", {})
                path.append(next(k for k in error.instance if k not in known))
            raise Problem.invalid(_path(where, path) or "body", _said(error))

    def message(self, kind: type[M], data: Any, where: str = "") -> M:
        """`data` (JSON) as a `kind`, or a Problem naming the value that is wrong."""
        self.validated(data, {"$ref": f"#/components/schemas/{kind.__name__}"}, where)
        try:
            message = kind.from_dict(data)
        except (ValueError, binascii.Error, KeyError, TypeError) as exc:
            raise Problem.invalid(where or "body", str(exc)) from None
        try:
            self.limits.check(bytes(message), kind)
        except GRPCError as exc:
            raise Problem.of(exc) from None
        return message

    def query(
        self, query: QueryParams, params: Iterable[QueryParam], **given: Any
    ) -> dict[str, Any]:
        """The query as JSON (`a.b=1` as `{"a": {"b": 1}}`), checked; unknown names refused."""
        known = {p.name: p for p in params}
        strangers(query, known)
        data: dict[str, Any] = dict(given)
        for param in known.values():
            values = query.getlist(param.name)
            if not values:
                continue
            if not param.repeated and len(values) > 1:
                raise Problem.invalid(param.name, "given more than once")
            read = [_typed(v, param) for v in values]
            self.validated(read if param.repeated else read[0], _listed(param), param.name)
            *parents, leaf = param.name.split(".")
            into = data
            for parent in parents:
                into = into.setdefault(parent, {})
            into[leaf] = read if param.repeated else read[0]
        return data


def strangers(query: QueryParams, known: Iterable[str]) -> None:
    """Refuses a query parameter the operation does not take: a misspelt filter must not
    be read as no filter."""
    names = list(known)
    for name in query:
        if name not in names:
            listed = ", ".join(names) or "none"
            raise Problem.invalid(name, f"no such query parameter (known: {listed})")


def _listed(param: QueryParam) -> Schema:
    return {"type": "array", "items": param.schema} if param.repeated else param.schema


def _typed(text: str, param: QueryParam) -> Any:
    """A query value as the JSON its schema expects: booleans and 32-bit integers parsed,
    the rest (64-bit integers included, as the JSON mapping allows) left as text."""
    kind = param.schema.get("type")
    if kind == "boolean":
        if text in ("true", "false"):
            return text == "true"
        raise Problem.invalid(param.name, f"{text!r} is not true or false")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise Problem.invalid(param.name, f"{text!r} is not an integer") from None
    return text


def _absolute(schema: Schema) -> Schema:
    """`#/components/...` references made to point into the registered document."""
    text = orjson.dumps(schema).decode().replace('"#/components/', f'"{DOCUMENT}#/components/')
    loaded: Schema = orjson.loads(text)
    return loaded


def _formats() -> FormatChecker:
    checker = FormatChecker()
    for kind in ("int64", "uint64"):

        def fits(value: object, kind: str = kind) -> bool:
            return not isinstance(value, str) or in_range(value, kind)

        checker.checks(kind)(fits)
    return checker


def _path(where: str, path: Iterable[Any]) -> str:
    text = where
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _said(error: Any) -> str:
    """jsonschema's words, shorter where they quote a whole value or a whole schema."""
    validator = error.validator
    if validator == "additionalProperties":
        known = ", ".join(error.schema.get("properties", {})) or "none"
        return f"no such field (known: {known})"
    if validator in ("anyOf", "oneOf"):
        return f"{_shown(error.instance)} is not {_kinds(error.schema)}"
    if validator == "format":
        return f"{_shown(error.instance)} is out of range for {error.validator_value}"
    return str(error.message)


def _kinds(schema: Schema) -> str:
    kinds = [s.get("format") or s.get("type", "a value") for s in schema.get("anyOf", [])]
    if "int64" in kinds or "uint64" in kinds:
        return "an integer (a number, or a string of digits)"
    return " or ".join(str(k) for k in kinds)


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it is longer than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> Problem:
    return Problem(
        413,
        f"a body of {format_size(size)} or more is over the limit of {format_size(limit)}",
        code="INVALID_ARGUMENT",
    )


def json_of(data: bytes, where: str = "body") -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Problem.invalid(where, f"not valid JSON ({exc})") from None


async def once(data: bytes) -> AsyncGenerator[bytes, None]:
    """A body already read, as the stream Starlette's multipart parser reads."""
    yield data


def media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()
