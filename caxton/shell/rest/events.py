"""The REST operations that read the log: conversations, traces, events as JSON lines and
as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from grpclib import GRPCError
from grpclib.const import Status
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response, StreamingResponse

from caxton.domain.errors import quoted
from caxton.replay.trace import claim_streams, trace_lines
from caxton.shell.api.errors import translated
from caxton.shell.api.generated.caxton import v1
from caxton.shell.rest.calls import JSON, NDJSON, Call, json_answer
from caxton.shell.rest.reading import message_params
from caxton.shell.rest.schemas import Schema, answer, ref


async def list_conversations(call: Call) -> Response:
    request = call.query_message(v1.ListConversationsRequest)
    return json_answer(await call.services.conversations.list_conversations(request))


async def get_conversation(call: Call) -> Response:
    request = v1.GetConversationRequest(id=call.path("id"))
    return json_answer(await call.services.conversations.get_conversation(request))


TRACE: Schema = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "One step, as a line of `caxton trace --json`.",
                "properties": {
                    "position": {"type": "integer"},
                    "time": {"type": "string", "format": "date-time"},
                    "conversation_id": {"type": "string"},
                    "agent": {"type": "string"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "message_id": {"type": "string"},
                    "to": {"type": "string"},
                    "error": {"type": "string"},
                    "tool": {"type": "string"},
                    "node": {"type": "string"},
                    "takeover": {"type": "object"},
                },
                "required": ["position", "time", "agent", "message", "status"],
            },
        }
    },
    "required": ["steps"],
}


async def trace(call: Call) -> Response:
    """The steps of a conversation, as `caxton trace --json` prints them."""
    conversation = call.path("id")
    log = call.services.events.log
    async with translated():  # a store error as the services say it (api/errors.py)
        own = await log.read(conversation_id=conversation)
        claims = await log.read_streams(claim_streams(own)) if own else []
    lines = trace_lines([*own, *claims])
    if not lines:
        raise GRPCError(Status.NOT_FOUND, f"no conversation {quoted(conversation)} in the log")
    body = {"steps": [line.to_json() for line in lines]}
    return Response(orjson.dumps(body), media_type=JSON)


async def events(call: Call) -> Response:
    """A range of the log as JSON lines, one EventRecord each."""
    request = call.query_message(v1.StreamEventsRequest)
    records = call.services.events.stream_events(request)
    first = await anext(records, None)  # a refusal comes before the answer starts

    async def lines() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield orjson.dumps(answer(first)) + b"\n"
        async for record in records:
            yield orjson.dumps(answer(record)) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


async def follow(call: Call) -> Response:
    """The log's events from a position on, then each as it commits, as Server-Sent Events
    (`id` the position: a client reconnecting with Last-Event-ID goes on after it)."""
    query = call.query(follow=True)
    last = call.request.headers.get("last-event-id", "")
    if last.isdigit():  # a browser's EventSource reconnects to the same URL, saying this
        query["fromPosition"] = int(last) + 1
    request = call.reader.message(v1.StreamEventsRequest, query)
    records = call.services.events.stream_events(request)
    assert isinstance(records, AsyncGenerator)  # closed below, whichever way it ends
    stopping = call.services.stopping

    async def events() -> AsyncIterator[ServerSentEvent]:
        stopped = asyncio.ensure_future(stopping.wait())
        following: asyncio.Future[Any] | None = None
        try:
            while True:
                following = asyncio.ensure_future(anext(records))
                await asyncio.wait([following, stopped], return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await following
                    return
                record = following.result()
                yield ServerSentEvent(
                    data=orjson.dumps(answer(record)).decode(),
                    id=str(record.position),
                    event="event",
                )
        except StopAsyncIteration:
            return
        finally:  # the client went away (cancelled), the server stops, or the log ended
            stopped.cancel()
            if following is not None and not following.done():
                following.cancel()  # before closing the generator it is running in
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
            await records.aclose()

    return EventSourceResponse(events(), ping=15)


FOLLOWED: Schema = {
    "type": "object",
    "description": "Each event of the stream (as OpenAPI 3.2 describes event streams).",
    "properties": {
        "event": {"const": "event"},
        "id": {"type": "string", "description": "The event's position in the log."},
        "data": {
            "type": "string",
            "contentMediaType": JSON,
            "contentSchema": ref(v1.EventRecord),
        },
    },
    "required": ["event", "id", "data"],
}

FOLLOW_QUERY = tuple(
    message_params(v1.StreamEventsRequest, omit=("follow", "streams", "to_position"))
)


async def log_info(call: Call) -> Response:
    return json_answer(await call.services.events.get_log_info(v1.GetLogInfoRequest()))
