"""The contract-net recording with its content as agents send it: compact JSON
(`{"price":15}`), where the TUI shows it pretty-printed (`"price": 15`)."""

from __future__ import annotations

import json

from caxton.domain.events import MessageSent, Recorded
from caxton.domain.frozen import replace
from tests.replay.recordings import contract_net


def compact_contract_net() -> list[Recorded]:
    """`contract_net()`, each message's content without a space."""
    return [_compact(recorded) for recorded in contract_net()]


def _compact(recorded: Recorded) -> Recorded:
    event = recorded.event
    if not isinstance(event, MessageSent):
        return recorded
    content = json.dumps(json.loads(event.message.content), separators=(",", ":"))
    message = replace(event.message, content=content)
    return replace(recorded, event=replace(event, message=message))
