"""What the host fills in on messages agents send, and the platform's own `failure` replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from caxton.domain import strict_json
from caxton.domain.acl import AclMessage, Performative, message_from_dict, reply_to
from caxton.domain.errors import InvalidMessage, bounded
from caxton.domain.frozen import replace
from caxton.domain.ids import (
    PLATFORM,
    derive_id,
    derived_conversation_id,
    sent_message_id,
)
from caxton.domain.tracing import child_traceparent


def complete_reply(data: Mapping[str, Any], cause: AclMessage | None) -> Mapping[str, Any]:
    """A reply may omit receivers when `in_reply_to` names the message being handled:
    it then goes to that message's sender, in its conversation and protocol."""
    if cause is None or data.get("receivers"):
        return data
    if data.get("in_reply_to") not in (cause.id, cause.reply_with):
        return data
    completed = dict(data)
    completed["receivers"] = [cause.sender]
    completed.setdefault("conversation_id", cause.conversation_id)
    completed.setdefault("protocol", cause.protocol)
    if cause.reply_with:
        completed["in_reply_to"] = cause.reply_with
    return completed


def outgoing(
    envelope_json: str,
    *,
    agent: str,
    cause: AclMessage | None,
    index: int,
    max_content_bytes: int,
) -> AclMessage:
    """The message an agent's `send(envelope_json)` puts in the log: the envelope parsed
    and validated, a reply completed from `cause`, the host's fields filled in. Raises
    `InvalidMessage` with the reason the agent is given."""
    try:
        data = strict_json.loads(envelope_json)
    except ValueError as exc:
        raise InvalidMessage("message", f"not valid JSON ({bounded(str(exc), 200)})") from None
    return outgoing_envelope(
        data, agent=agent, cause=cause, index=index, max_content_bytes=max_content_bytes
    )


def outgoing_envelope(
    data: Any,
    *,
    agent: str,
    cause: AclMessage | None,
    index: int,
    max_content_bytes: int,
) -> AclMessage:
    """`outgoing` of an envelope the shell already parsed (with a faster parser)."""
    if isinstance(data, dict):
        data = complete_reply(data, cause)
    message = message_from_dict(data, max_content_bytes=max_content_bytes, require_id=False)
    return sent_by(message, agent=agent, cause=cause, index=index)


def sent_by(message: AclMessage, *, agent: str, cause: AclMessage | None, index: int) -> AclMessage:
    """The `index`-th message `agent` sends while handling `cause` (or in `init`), with
    the fields the host owns: a derived id, the sender, a conversation, trace context."""
    cause_id = cause.id if cause is not None else f"init:{agent}"
    message_id = sent_message_id(cause_id, agent, index)
    return replace(
        message,
        id=message_id,
        sender=agent,
        conversation_id=message.conversation_id or derived_conversation_id(message_id),
        traceparent=message.traceparent or child_traceparent(message_id, cause),
    )


def platform_failure(message: AclMessage, reason: str) -> AclMessage | None:
    """The `failure` the platform sends back to whoever sent `message`; none for a message
    without a sender or sent by the platform itself (no failures about failures)."""
    if not message.sender or message.sender == PLATFORM:
        return None
    failure_id = derive_id("failure", message.id, reason)
    failure = reply_to(
        message,
        id=failure_id,
        sender=PLATFORM,
        performative=Performative.FAILURE,
        content=json.dumps({"error": reason, "message_id": message.id}),
    )
    return replace(failure, traceparent=child_traceparent(failure_id, message))
