"""RFC 9457 problem details: how the REST gateway says no, from the same table as gRPC.

Problem                 an HTTP status, what was wrong, and the field when one was
 └── from GRPCError     a service's refusal: its gRPC status through HTTP_STATUS_OF
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from grpclib import GRPCError
from grpclib.const import Status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from caxton.domain.errors import bounded
from caxton.shell.api.errors import HTTP_STATUS_OF, MAX_STATUS_MESSAGE

PROBLEM_JSON = "application/problem+json"
_TITLES = {499: "Client Closed Request"}


class Problem(Exception):
    """A request refused: `status` (HTTP), `detail` for a person, and what else helps:
    `code` (the gRPC status name, for a program), `field` (the JSON path of a bad value)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str = "",
        field: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = bounded(detail, MAX_STATUS_MESSAGE)
        self.code = code
        self.field = field
        self.headers = headers or {}

    @classmethod
    def of(cls, error: GRPCError) -> Problem:
        return cls(HTTP_STATUS_OF[error.status], error.message or "", code=error.status.name)

    @classmethod
    def invalid(cls, field: str, detail: str) -> Problem:
        """A value of the request that cannot be used, named by its path (`message.receivers`)."""
        text = f"{field}: {detail}" if field else detail
        return cls(400, text, code=Status.INVALID_ARGUMENT.name, field=field)

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": "about:blank",
            "title": _title(self.status),
            "status": self.status,
            "detail": self.detail,
        }
        if self.code:
            document["code"] = self.code
        if self.field:
            document["field"] = self.field
        return document

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_JSON,
        )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _TITLES.get(status, "Error")


async def refused(request: Request, error: Exception) -> Response:
    """Starlette's handler for a Problem, or a service's GRPCError."""
    assert isinstance(error, Problem | GRPCError)
    return (error if isinstance(error, Problem) else Problem.of(error)).response()


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take)."""
    assert isinstance(error, HTTPException)
    status = error.status_code
    if status == 404:
        detail = f"no route {request.method} {request.url.path} (GET /openapi.json lists them)"
    elif status == 405:
        allowed = (error.headers or {}).get("Allow", "")
        detail = f"{request.url.path} does not take {request.method} (it takes {allowed})"
    else:
        detail = error.detail
    return Problem(status, detail, headers=dict(error.headers or {})).response()


async def internal(request: Request, error: Exception) -> Response:
    """A failure of the gateway itself, said as gRPC says one (`internal error: ...`)."""
    return Problem(
        500, f"internal error: {type(error).__name__}: {error}", code=Status.INTERNAL.name
    ).response()
