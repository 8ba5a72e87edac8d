"""W3C trace context for messages, with trace and span ids derived from message ids.

The hot path never starts a span: it only stamps a `traceparent` on each message
(`00-<trace id>-<span id of its send>-<flags>`). Spans are built later from the
committed events (`caxton.replay.spans`), and every id they use is derived here from
message ids, so a live export, a later export and a replay agree on every id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from caxton.domain.acl import AclMessage
from caxton.domain.frozen import replace

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
SAMPLED = "01"


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A parsed `traceparent`: the trace, the sender's span, and the flags (hex)."""

    trace_id: str
    span_id: str
    flags: str = SAMPLED

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


@lru_cache(maxsize=4096)  # what an agent sends repeats the context of what it handles
def parse_traceparent(value: str) -> TraceContext | None:
    """The context in a W3C `traceparent`, or None when it is missing or malformed."""
    found = _TRACEPARENT.match(value.strip().lower()) if value else None
    if found is None:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def _hex(size: int, *parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=size).hexdigest()
    if digest in (_INVALID_TRACE, _INVALID_SPAN):  # all-zero ids are invalid in W3C
        digest = digest[:-1] + "1"
    return digest


def derived_trace_id(message_id: str) -> str:
    """The trace a message opens when it arrives without trace context."""
    return _hex(16, "trace", message_id)


def send_span_id(message_id: str) -> str:
    """The span of a message's send (its commit to the log)."""
    return _hex(8, "send", message_id)


def deliver_span_id(message_id: str, agent: str) -> str:
    """The span of a message's delivery to `agent` (its time in the mailbox)."""
    return _hex(8, "deliver", message_id, agent)


def process_span_id(message_id: str, agent: str) -> str:
    """The span of `agent` handling a message. One per agent: a message reaches one
    replica of each agent it is delivered to."""
    return _hex(8, "process", message_id, agent)


def tool_span_id(call_id: str) -> str:
    """The span of one tool call (`ToolCalled.call_id`)."""
    return _hex(8, "tool", call_id)


def trace_of(message: AclMessage) -> TraceContext:
    """The message's own context, or the one derived from its id when it carries none."""
    parsed = parse_traceparent(message.traceparent)
    if parsed is not None:
        return parsed
    return TraceContext(derived_trace_id(message.id), send_span_id(message.id))


def stamped(message: AclMessage) -> AclMessage:
    """A message from outside with trace context: the caller's when it sent a valid
    one (its span becomes the parent of the send), else a new trace of its own."""
    if message.traceparent and parse_traceparent(message.traceparent) is not None:
        return message
    header = f"00-{derived_trace_id(message.id)}-{send_span_id(message.id)}-{SAMPLED}"
    return replace(message, traceparent=header)


def child_traceparent(message_id: str, cause: AclMessage | None) -> str:
    """The `traceparent` of a message sent while handling `cause` (or in `init`): the
    cause's trace, and the new message's own send span as the parent of what follows."""
    if cause is None:
        return f"00-{derived_trace_id(message_id)}-{send_span_id(message_id)}-{SAMPLED}"
    context = parse_traceparent(cause.traceparent)
    if context is None:
        return f"00-{derived_trace_id(cause.id)}-{send_span_id(message_id)}-{SAMPLED}"
    return f"00-{context.trace_id}-{send_span_id(message_id)}-{context.flags}"
