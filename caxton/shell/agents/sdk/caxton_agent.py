"""caxton_agent: the Python SDK for agents, bundled into every component `caxton agent build` makes.

It runs inside the WebAssembly component (componentize-py), on top of the
generated `wit_world` bindings of the caxton:agent world:

    from caxton_agent import Agent, Message, call_tool, log, now, reply, send

    class Greeter(Agent):
        def handle(self, message: Message) -> None:
            reply(message, "inform", {"hello": message.sender})
"""
# mypy: disable-error-code="import-not-found, import-untyped, misc"

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from componentize_py_types import Err
from wit_world.imports import host

JSON = "json"


class SendRefused(Exception):
    """The host refused a message; `reason` says why (invalid envelope, unknown receiver)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ToolFailed(Exception):
    """A tool call failed; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """A delivered FIPA-ACL message; `body` is `content` decoded when the language is json."""

    id: str
    performative: str
    sender: str
    receivers: tuple[str, ...]
    content: str
    language: str
    ontology: str
    protocol: str
    conversation_id: str
    reply_with: str
    in_reply_to: str
    reply_by: int | None
    traceparent: str
    body: Any

    @classmethod
    def from_json(cls, envelope: str) -> Message:
        data = json.loads(envelope)
        content = str(data.get("content") or "")
        language = str(data.get("language") or JSON)
        body = json.loads(content) if language == JSON and content else None
        return cls(
            id=str(data.get("id") or ""),
            performative=str(data.get("performative") or ""),
            sender=str(data.get("sender") or ""),
            receivers=tuple(str(r) for r in data.get("receivers") or ()),
            content=content,
            language=language,
            ontology=str(data.get("ontology") or ""),
            protocol=str(data.get("protocol") or ""),
            conversation_id=str(data.get("conversation_id") or ""),
            reply_with=str(data.get("reply_with") or ""),
            in_reply_to=str(data.get("in_reply_to") or ""),
            reply_by=data.get("reply_by"),
            traceparent=str(data.get("traceparent") or ""),
            body=body,
        )

    def to_json(self) -> str:
        """The envelope as JSON text: how to keep a message in an agent's memory (its
        snapshot holds JSON values only); `Message.from_json` gives it back."""
        fields = {k: v for k, v in self.__dict__.items() if k != "body"}
        fields["receivers"] = list(self.receivers)
        return json.dumps(fields, separators=(",", ":"))


class Agent:
    """Subclass this once per file; `caxton agent build` instantiates your subclass."""

    def init(self, config: dict[str, Any]) -> None:
        """Called once per instance with the deployment's config (a JSON object)."""

    def handle(self, message: Message) -> None:
        """Called once per delivered message; raise to answer the sender with `failure`."""
        raise NotImplementedError(f"{type(self).__name__} does not handle messages")

    def snapshot(self) -> str:
        """The agent's memory as text, recorded every N handlings; "" keeps no memory.

        By default its public attributes (names not starting with `_`) as JSON, or ""
        when it has none: an agent that sets no attribute is stateless and pays nothing.
        Attributes must be JSON values (dicts, lists, str, int, float, bool, None; a
        tuple comes back a list); override `snapshot` and `restore` for anything else."""
        state = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return json.dumps(state, sort_keys=True, separators=(",", ":")) if state else ""

    def restore(self, state: str) -> None:
        """Puts back what `snapshot` returned (after `init`, when an instance is rebuilt)."""
        if not state:
            return
        for name, value in json.loads(state).items():
            setattr(self, name, value)


def send(
    performative: str,
    receivers: list[str] | tuple[str, ...],
    content: Any = None,
    *,
    conversation_id: str = "",
    protocol: str = "",
    reply_by: int | None = None,
    reply_with: str = "",
    in_reply_to: str = "",
    language: str = JSON,
    ontology: str = "",
) -> str:
    """Sends a message; returns its id. `content` is JSON-encoded when the language is json."""
    envelope: dict[str, Any] = {
        "performative": performative,
        "receivers": list(receivers),
        "content": _encode(content, language),
        "language": language,
        "ontology": ontology,
        "protocol": protocol,
        "conversation_id": conversation_id,
        "reply_with": reply_with,
        "in_reply_to": in_reply_to,
        "reply_by": reply_by,
    }
    try:
        return str(host.send(json.dumps(envelope, separators=(",", ":"))))
    except Err as refused:
        raise SendRefused(str(refused.value)) from None


def reply(message: Message, performative: str, content: Any = None) -> str:
    """Answers `message`: to its sender, in its conversation and protocol; returns the id."""
    return send(
        performative,
        [message.sender],
        content,
        conversation_id=message.conversation_id,
        protocol=message.protocol,
        in_reply_to=message.reply_with or message.id,
    )


def now() -> int:
    """Milliseconds since the Unix epoch (journaled: a replay sees the same value)."""
    return int(host.now())


def random() -> int:
    """64 random bits (journaled: a replay sees the same value)."""
    return int(host.random())


@dataclass(frozen=True)
class ToolResult:
    """What an MCP tool returned: its content blocks, the text of its text blocks, its
    structured content (when the tool gives one), and whether the host cut it to fit."""

    content: list[Any]
    text: str
    structured: Any
    truncated: bool

    def json(self) -> Any:
        """The structured content, or else the text decoded as JSON."""
        return self.structured if self.structured is not None else json.loads(self.text)


def call_tool(server: str, tool: str, arguments: Any = None) -> ToolResult:
    """Calls tool `tool` of MCP server `server` through the host (the agent must be granted
    it: `--tools server.tool`). Raises ToolFailed with the reason (refused, breaker-open,
    timeout, server-error, tool-error). Journaled: a replay gets the recorded result."""
    try:
        answer = host.call_tool(server, tool, json.dumps(arguments or {}))
    except Err as failed:
        raise ToolFailed(str(failed.value)) from None
    data = json.loads(answer)
    content = list(data.get("content") or [])
    return ToolResult(
        content=content,
        text="\n".join(c.get("text", "") for c in content if c.get("type") == "text"),
        structured=data.get("structuredContent"),
        truncated=bool(data.get("truncated")),
    )


class _Log:
    """`log.info("...")`: lines in the server's log, tagged with the agent's name."""

    def trace(self, text: str) -> None:
        host.log(host.Level.TRACE, text)

    def debug(self, text: str) -> None:
        host.log(host.Level.DEBUG, text)

    def info(self, text: str) -> None:
        host.log(host.Level.INFO, text)

    def warn(self, text: str) -> None:
        host.log(host.Level.WARN, text)

    def error(self, text: str) -> None:
        host.log(host.Level.ERROR, text)


log = _Log()


def _encode(content: Any, language: str) -> str:
    if content is None:
        return ""
    if language == JSON:
        return json.dumps(content, separators=(",", ":"))
    return str(content)


def describe(exc: BaseException) -> str:
    """The error text the sender receives in its `failure`."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
