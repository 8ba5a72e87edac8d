"""Optional bearer-token check for every RPC and REST call (`--token` / CAXTON_TOKEN)."""

from __future__ import annotations

import hmac

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.server import Server

OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def install_token_check(server: Server, token: str) -> None:
    """Refuses calls without `authorization: Bearer <token>` (health checks stay open)."""

    async def on_request(event: RecvRequest) -> None:
        if event.method_name in OPEN_METHODS:
            return
        if not authorized(str(event.metadata.get("authorization", "")), token):
            raise GRPCError(
                Status.UNAUTHENTICATED,
                "missing or wrong token (pass --token or set CAXTON_TOKEN)",
            )

    listen(server, RecvRequest, on_request)


def authorized(authorization: str, token: str) -> bool:
    """Whether an `authorization` header (gRPC metadata or HTTP) carries the token."""
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
