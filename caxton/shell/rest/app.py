"""The REST gateway as a Starlette application: the operations' routes, the token check,
problem responses for every refusal, /openapi.json and /docs."""

from __future__ import annotations

from typing import Any

import orjson
from grpclib import GRPCError
from grpclib.const import Status
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from caxton.domain.addresses import is_loopback
from caxton.shell.api.auth import authorized
from caxton.shell.api.limits import RequestLimits
from caxton.shell.rest.calls import Call, Operation, Services
from caxton.shell.rest.openapi import DOCS_PAGE, openapi_document
from caxton.shell.rest.problems import Problem, http_error, internal, refused
from caxton.shell.rest.reading import Reader, strangers
from caxton.shell.rest.routes import OPERATIONS

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"


def rest_app(
    services: Services, *, token: str, limits: RequestLimits, loopback: bool = True
) -> Starlette:
    document = openapi_document(OPERATIONS)
    reader = Reader(document, limits)
    spec = orjson.dumps(document)

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_PAGE)

    by_path: dict[str, dict[str, Operation]] = {}
    for operation in OPERATIONS:
        by_path.setdefault(operation.path, {})[operation.method] = operation
    # one route per path, so that a 405 lists every method the path takes
    routes: list[BaseRoute] = [
        Route(path, _endpoint(methods, services, reader), methods=list(methods))
        for path, methods in by_path.items()
    ]
    routes += [Route(OPENAPI_PATH, openapi), Route(DOCS_PATH, docs)]
    open_paths = {o.path for o in OPERATIONS if o.open} | {OPENAPI_PATH, DOCS_PATH}
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SameOriginOnly, loopback=loopback),
            Middleware(TokenCheck, token=token, open_paths=frozenset(open_paths)),
        ],
        exception_handlers={
            Problem: refused,
            GRPCError: refused,
            HTTPException: http_error,
            Exception: internal,
        },
    )


def _endpoint(methods: dict[str, Operation], services: Services, reader: Reader) -> Any:
    async def endpoint(request: Request) -> Response:
        operation = methods[request.method if request.method != "HEAD" else "GET"]
        strangers(request.query_params, (p.name for p in operation.query))
        return await operation.handler(Call(operation, request, services, reader))

    return endpoint


class SameOriginOnly:
    """Refuses what a web page elsewhere makes a browser send: a request whose `Origin` is
    not the gateway's own, or that the browser marks cross-site (a page can POST a
    text/plain or form body anywhere without asking first: it must not deploy, send or
    stop anything), and, on a loopback address, a request for another host name (a DNS
    rebinding page that reached 127.0.0.1 under its own name). Clients that are not
    browsers send neither header and are not affected. There is no CORS."""

    def __init__(self, app: ASGIApp, *, loopback: bool) -> None:
        self.app = app
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why = foreign(dict(scope["headers"]), scope.get("scheme", "http"), self.loopback)
        if not why:
            await self.app(scope, receive, send)
            return
        refusal = Problem(403, why, code=Status.PERMISSION_DENIED.name)
        await refusal.response()(scope, receive, send)


def foreign(headers: dict[bytes, bytes], scheme: str, loopback: bool) -> str:
    """Why a request comes from a web page that is not the gateway's own; "" if it does not."""
    host = headers.get(b"host", b"").decode("latin-1")
    origin = headers.get(b"origin", b"").decode("latin-1")
    if headers.get(b"sec-fetch-site", b"") == b"cross-site":
        return "a request from another site's page (Sec-Fetch-Site: cross-site) is refused"
    if origin and origin != "null" and origin != f"{scheme}://{host}":
        return f"a request from a page of {origin} is refused: the gateway serves no CORS"
    if origin == "null":
        return "a request from a page without an origin is refused"
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if loopback and host and not is_loopback(name.strip("[]")):
        return f"a loopback gateway does not answer for host {host!r} (DNS rebinding?)"
    return ""


class TokenCheck:
    """Refuses requests without `Authorization: Bearer <token>`, when the server has a
    token, as the gRPC API does; the health check and the API's description stay open."""

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if authorized(given, self.token):
            await self.app(scope, receive, send)
            return
        refusal = Problem(
            401,
            "missing or wrong token: send 'Authorization: Bearer TOKEN' with the server's "
            "--token (CAXTON_TOKEN)",
            code=Status.UNAUTHENTICATED.name,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await refusal.response()(scope, receive, send)
