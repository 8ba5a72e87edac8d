"""Optional bearer-token check for every RPC (`--token` / CAXTON_TOKEN)."""

from __future__ import annotations

import hmac

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.server import Server

OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def install_token_check(server: Server, token: str) -> None:
    """Refuses calls without `authorization: Bearer <token>` (health checks stay open)."""
    expected = f"Bearer {token}".encode()

    async def on_request(event: RecvRequest) -> None:
        if event.method_name in OPEN_METHODS:
            return
        given = event.metadata.get("authorization", "")
        if not hmac.compare_digest(str(given).encode(), expected):
            raise GRPCError(
                Status.UNAUTHENTICATED,
                "missing or wrong token (pass --token or set CAXTON_TOKEN)",
            )

    listen(server, RecvRequest, on_request)
