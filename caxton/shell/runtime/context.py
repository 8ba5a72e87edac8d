"""What one guest call sees of the host: send, log, now, random, call-tool, journaled.

A `CallContext` lives for one `init` or `handle` call. It validates and addresses
what the agent sends, journals every nondeterministic answer, and buffers it all;
the actor turns the buffer into events after the call returns. Host functions may
run on a worker thread: they only append to this object's lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from caxton.domain.acl import AclMessage, message_from_dict
from caxton.domain.errors import InvalidMessage
from caxton.domain.events import HostCall
from caxton.domain.frozen import replace
from caxton.domain.ids import derived_conversation_id, sent_message_id
from caxton.shell.runtime.clock import Clock, random_u64
from caxton.shell.wasm import SendRefused, ToolFailed

log = logging.getLogger("caxton.agent")


@dataclass(slots=True)
class Outgoing:
    """A message an agent sent, addressed, waiting for the handling's commit."""

    message: AclMessage
    deliveries: tuple[str, ...]
    dead_letters: tuple[tuple[str, str], ...]


Router = Callable[[AclMessage], tuple[tuple[str, ...], tuple[tuple[str, str], ...]]]


@dataclass(slots=True)
class CallContext:
    """The host side of one guest call."""

    agent: str
    cause: AclMessage | None
    clock: Clock
    route: Router
    max_content_bytes: int
    journal: list[HostCall] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)

    def send(self, envelope_json: str) -> str:
        try:
            data = json.loads(envelope_json)
        except ValueError as exc:
            raise SendRefused(f"message is not valid JSON ({exc})") from None
        if isinstance(data, dict):
            data = self._complete_reply(data)
        try:
            message = message_from_dict(
                data, max_content_bytes=self.max_content_bytes, require_id=False
            )
        except InvalidMessage as exc:
            raise SendRefused(str(exc)) from None
        cause_id = self.cause.id if self.cause is not None else f"init:{self.agent}"
        message_id = sent_message_id(cause_id, self.agent, len(self.outgoing))
        conversation = message.conversation_id or derived_conversation_id(message_id)
        message = _own(message, message_id, self.agent, conversation, self.cause)
        deliveries, dead = self.route(message)
        self.outgoing.append(Outgoing(message, deliveries, dead))
        return message_id

    def _complete_reply(self, data: dict[str, object]) -> dict[str, object]:
        """A reply may omit receivers: it goes to the sender of the message it answers."""
        cause = self.cause
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

    def log(self, level: str, text: str) -> None:
        log.log(_LEVELS.get(level, logging.INFO), "%s", text[:4096], extra={"agent": self.agent})

    def now(self) -> int:
        value = self.clock.now_ms()
        self.journal.append(HostCall(kind="now", value=str(value)))
        return value

    def random(self) -> int:
        value = random_u64()
        self.journal.append(HostCall(kind="random", value=str(value)))
        return value

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        reason = f"no tool server {server!r} is configured (tool bridge not enabled)"
        self.journal.append(HostCall(kind="tool-error", value=reason))
        raise ToolFailed(reason)


def _own(
    message: AclMessage, message_id: str, agent: str, conversation: str, cause: AclMessage | None
) -> AclMessage:
    return replace(
        message,
        id=message_id,
        sender=agent,
        conversation_id=conversation,
        traceparent=message.traceparent or (cause.traceparent if cause else ""),
    )


_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
