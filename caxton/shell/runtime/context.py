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
from caxton.domain.sending import complete_reply, sent_by
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
            data = complete_reply(data, self.cause)
        try:
            message = message_from_dict(
                data, max_content_bytes=self.max_content_bytes, require_id=False
            )
        except InvalidMessage as exc:
            raise SendRefused(str(exc)) from None
        message = sent_by(message, agent=self.agent, cause=self.cause, index=len(self.outgoing))
        deliveries, dead = self.route(message)
        self.outgoing.append(Outgoing(message, deliveries, dead))
        return message.id

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


_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
