"""Exports of recorded events as text: JSON lines and Mermaid (OTLP JSON is `otlp.py`).

The JSON-lines schema, `caxton.events/1`, one object per line, in log order:

    {"schema": "caxton.events/1", "position": 12, "stream": "conversation:…",
     "version": 3, "at": "2026-11-24T03:29:49.101Z", "at_ms": 1795…,
     "type": "MessageSent", "traceparent": "00-…", "data": {…}}

and, in a cluster's log, "node": the node that committed the event.

`data` is the event in its stored form (`caxton.domain.schema.encode`, the same payload
`StreamEvents` sends as `payload_json`, at `SCHEMA_VERSION`). New keys may be added
within version 1; a removed or renamed key bumps the schema to `caxton.events/2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from caxton.domain import schema
from caxton.domain.events import Recorded
from caxton.replay.cursor import Timeline
from caxton.replay.recording import Recording
from caxton.replay.views import mermaid as mermaid_text

JSONL_SCHEMA = "caxton.events/1"


def jsonl_object(recorded: Recorded) -> dict[str, Any]:
    moment = datetime.fromtimestamp(recorded.at / 1000, tz=UTC)
    stamped = {"node": recorded.node} if recorded.node else {}  # a cluster's node
    return {
        **stamped,
        "schema": JSONL_SCHEMA,
        "position": recorded.position,
        "stream": recorded.stream,
        "version": recorded.version,
        "at": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{recorded.at % 1000:03d}Z",
        "at_ms": recorded.at,
        "type": schema.type_name(recorded.event),
        "traceparent": recorded.traceparent,
        "data": schema.encode(recorded.event),
    }


def jsonl_lines(records: Iterable[Recorded]) -> Iterator[bytes]:
    """One line (newline included) per event."""
    for recorded in records:
        yield orjson.dumps(jsonl_object(recorded), option=orjson.OPT_SORT_KEYS) + b"\n"


def mermaid(recording: Recording) -> bytes:
    """The conversation as a Mermaid `sequenceDiagram` in a Markdown code fence, which
    GitHub renders."""
    diagram = mermaid_text(Timeline(recording))
    title = f"Conversation `{recording.conversation_id}`\n\n"
    return (title + "```mermaid\n" + diagram + "```\n").encode()
