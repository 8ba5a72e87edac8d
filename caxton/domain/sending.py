"""What the host fills in on messages agents send, and the platform's own `failure` replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from caxton.domain import strict_json
from caxton.domain.acl import (
    JSON_LANGUAGE,
    MAX_RECEIVERS,
    PROTOCOLS,
    AclMessage,
    Performative,
    is_address,
    is_content,
    is_plain,
    is_token,
    message_from_dict,
    reply_to,
)
from caxton.domain.errors import InvalidMessage, bounded
from caxton.domain.frozen import positional, replace
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


class Draft(Protocol):
    """An agent's envelope as a typed decoder reads it (the shell's, with msgspec): only
    envelope fields, each of its type, None where absent or null. `conversation_id` and
    `protocol` are None only where absent: a completed reply takes the cause's then."""

    @property
    def performative(self) -> Performative: ...
    @property
    def receivers(self) -> tuple[str, ...] | None: ...
    @property
    def content(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def ontology(self) -> str | None: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def conversation_id(self) -> str | None: ...
    @property
    def reply_with(self) -> str | None: ...
    @property
    def in_reply_to(self) -> str | None: ...
    @property
    def reply_by(self) -> int | None: ...
    @property
    def id(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def traceparent(self) -> str | None: ...


def outgoing_draft(
    draft: Draft,
    *,
    agent: str,
    cause: AclMessage | None,
    index: int,
    max_content_bytes: int,
) -> AclMessage | None:
    """`outgoing_envelope` of the envelope `draft` was decoded from, for the happy path:
    the same message, built once; or None when a rule may be broken, and then
    `outgoing_envelope` decides, and says which rule. Every field the agent wrote is
    checked, even one a completed reply replaces (so None is sometimes too cautious)."""
    receivers = draft.receivers
    conversation_id = draft.conversation_id
    protocol = draft.protocol
    in_reply_to = draft.in_reply_to
    if in_reply_to and not is_token(in_reply_to, "in_reply_to"):
        return None
    if not receivers:  # `complete_reply`, or no receivers at all
        if cause is None or in_reply_to is None or in_reply_to not in (cause.id, cause.reply_with):
            return None
        receivers = (cause.sender,)
        if conversation_id is None:
            conversation_id = cause.conversation_id
        if protocol is None:
            protocol = cause.protocol
        if cause.reply_with:
            in_reply_to = cause.reply_with
            if not is_token(in_reply_to, "in_reply_to"):
                return None
    elif len(receivers) > MAX_RECEIVERS:
        return None
    for receiver in receivers:
        if not is_address(receiver):
            return None
    sender, language, content = draft.sender, draft.language, draft.content or ""
    ontology, reply_with, traceparent = draft.ontology, draft.reply_with, draft.traceparent
    if (  # empty text is valid (and the default): it needs no call
        (sender and not is_address(sender))
        or (language and not is_plain(language, "language"))
        or not is_content(content, language or JSON_LANGUAGE, max_content_bytes)
        or (protocol or "") not in PROTOCOLS
        or (draft.id and not is_token(draft.id, "id"))
        or (ontology and not is_plain(ontology, "ontology"))
        or (conversation_id and not is_token(conversation_id, "conversation_id"))
        or (reply_with and not is_token(reply_with, "reply_with"))
        or (traceparent and not is_plain(traceparent, "traceparent"))
    ):
        return None
    cause_id = cause.id if cause is not None else f"init:{agent}"
    message_id = sent_message_id(cause_id, agent, index)
    return _message(
        message_id,
        draft.performative,
        agent,
        receivers,
        content,
        language or JSON_LANGUAGE,
        ontology or "",
        protocol or "",
        conversation_id or derived_conversation_id(message_id),
        reply_with or "",
        in_reply_to or "",
        draft.reply_by,
        traceparent or child_traceparent(message_id, cause),
    )


_message = positional(AclMessage)
"""An AclMessage from every field in order, without the frozen `__init__`."""


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
