"""`--edit FIELD=VALUE`: one recorded message changed, checked as the runtime would check
it, before a conversation is forked from it (`caxton replay --fork-at STEP`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from caxton.domain import strict_json
from caxton.domain.acl import JSON_LANGUAGE, AclMessage, Performative, validate_address
from caxton.domain.errors import InvalidMessage, quoted
from caxton.domain.events import MessageSent, Recorded
from caxton.replay.recording import Recording

EDITABLE = (
    "content",
    "performative",
    "receivers",
    "sender",
    "language",
    "ontology",
    "protocol",
    "reply_with",
    "in_reply_to",
    "reply_by",
)
"""The envelope's fields an edit may change (not `id` nor `conversation_id`: the fork is
the same message of the same conversation, otherwise changed)."""


class BadEdit(Exception):
    """An edit, or a step to fork at, that cannot be applied; the message says why."""


def parse_edit(text: str) -> tuple[str, str]:
    """`content={"price": 5}` → (`content`, `{"price": 5}`)."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise BadEdit(f"--edit {quoted(text)} is not FIELD=VALUE (e.g. 'content={{\"price\": 5}}')")
    if name not in EDITABLE:
        raise BadEdit(f"--edit: no field {quoted(name)} to edit (fields: {', '.join(EDITABLE)})")
    return name, value


def sent_at(recording: Recording, step: int) -> Recorded:
    """The step to fork at, which must be a message sent."""
    events = recording.events
    if not 1 <= step <= len(events):
        raise BadEdit(f"--fork-at {step}: the conversation has steps 1 to {len(events)}")
    recorded = events[step - 1]
    if not isinstance(recorded.event, MessageSent):
        sends = [str(i) for i, r in enumerate(events, 1) if isinstance(r.event, MessageSent)]
        kind = type(recorded.event).__name__
        raise BadEdit(
            f"--fork-at {step}: step {step} is a {kind}, not a message sent; "
            f"fork at one of steps {', '.join(sends[:12])}{' …' if len(sends) > 12 else ''}"
        )
    return recorded


def edited(message: AclMessage, edits: Sequence[tuple[str, str]]) -> AclMessage:
    """The message with every edit applied, in order; raises `BadEdit`."""
    for name, value in edits:
        message = _edit(message, name, value)
    touched = {name for name, _ in edits} & {"content", "language"}
    if touched and message.language == JSON_LANGUAGE and message.content:
        try:
            strict_json.loads(message.content)
        except ValueError as exc:
            raise BadEdit(f"--edit content: not valid JSON ({exc})") from None
    return message


def _edit(message: AclMessage, name: str, value: str) -> AclMessage:
    try:
        match name:
            case "performative":
                return replace(message, performative=Performative(value.strip()))
            case "receivers":
                receivers = tuple(r.strip() for r in value.split(",") if r.strip())
                if not receivers:
                    raise BadEdit("--edit receivers: name at least one receiver")
                for r in receivers:
                    validate_address(r, "receivers")
                return replace(message, receivers=receivers)
            case "sender":
                return replace(message, sender=validate_address(value.strip(), "sender"))
            case "reply_by":
                return replace(message, reply_by=int(value) if value.strip() else None)
            case "content":
                return replace(message, content=value)
            case "language":
                return replace(message, language=value.strip())
            case "ontology":
                return replace(message, ontology=value.strip())
            case "protocol":
                return replace(message, protocol=value.strip())
            case "reply_with":
                return replace(message, reply_with=value.strip())
            case _:
                return replace(message, in_reply_to=value.strip())
    except InvalidMessage as exc:
        raise BadEdit(f"--edit {exc}") from None
    except ValueError:
        if name == "performative":
            known = ", ".join(p.value for p in Performative)
            raise BadEdit(
                f"--edit performative: {quoted(value)} is not a performative ({known})"
            ) from None
        raise BadEdit(f"--edit reply_by: {quoted(value)} is not milliseconds since 1970") from None
