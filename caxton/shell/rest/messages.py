"""The REST operations that send: one ACL message, and a request that waits for its reply."""

from __future__ import annotations

from grpclib import GRPCError
from grpclib.const import Status
from starlette.responses import Response

from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.service import MAX_WAIT_MS
from caxton.shell.rest import reading
from caxton.shell.rest.calls import API, Call, json_answer
from caxton.shell.rest.problems import Problem
from caxton.shell.rest.reading import QueryParam

DEFAULT_INVOKE_WAIT_MS = 5_000

IDEMPOTENCY_KEY = (
    "Idempotency-Key",
    "Becomes the message's id: a retry with the same key within two minutes is answered "
    "with the first one's result and not accepted twice.",
)


async def send(call: Call) -> Response:
    request = await call.body_message(v1.SendRequest)
    request.message = _keyed(call, request.message)
    return json_answer(await call.services.messages.send(request))


def _keyed(call: Call, envelope: v1.AclEnvelope | None) -> v1.AclEnvelope | None:
    """The envelope with the Idempotency-Key as its id (which it may also give, the same)."""
    key = call.request.headers.get("idempotency-key")
    if key is None or envelope is None:
        return envelope
    if envelope.id and envelope.id != key:
        raise Problem.invalid("message.id", "differs from the Idempotency-Key header")
    envelope.id = key
    return envelope


INVOKE_QUERY = (
    QueryParam(
        "waitMs",
        {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_MS},
        description=f"How long to wait for the reply (default {DEFAULT_INVOKE_WAIT_MS}).",
    ),
    QueryParam("performative", {"type": "string"}, description="Default request."),
    QueryParam("protocol", {"type": "string"}, description="Default fipa-request."),
)


async def invoke(call: Call) -> Response:
    """A request to an agent (the body is its content), answered with the agent's reply:
    `client.invoke` over HTTP."""
    query = call.query()
    content = await call.body_bytes(call.services.messages.node.max_content_bytes)
    reading.json_of(content)
    envelope = v1.AclEnvelope(
        performative=query.get("performative", "request"),
        receivers=[call.path("name")],
        content=content.decode(),
        language="json",
        protocol=query.get("protocol", "fipa-request"),
    )
    wait_ms = query.get("waitMs", DEFAULT_INVOKE_WAIT_MS)
    request = v1.SendRequest(message=_keyed(call, envelope), wait_ms=wait_ms)
    reply = await call.services.messages.send(request)
    if reply.reply is None and reply.accepted_before:  # never a false timeout
        raise GRPCError(
            Status.ALREADY_EXISTS,
            f"message {reply.message_id} was accepted before (conversation "
            f"{reply.conversation_id}): a retry does not wait for its reply again; its reply, "
            f"if any, is in GET {API}/conversations/{reply.conversation_id}/trace",
        )
    if reply.reply is None:
        raise GRPCError(
            Status.DEADLINE_EXCEEDED,
            f"{call.path('name')} did not reply within {wait_ms} ms (conversation "
            f"{reply.conversation_id}; GET {API}/conversations/{reply.conversation_id}/trace)",
        )
    return json_answer(reply)
