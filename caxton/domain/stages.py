"""When the stages of a message's handling happened, from the times the runtime recorded.

A message waits in its receiver's mailbox from its `MessageSent`'s commit until the
instance takes it (`dequeued_us`); the guest call runs from `started_us` for
`duration_us`, its tool waits included (each from the `ToolCalled`'s `at_us` to its
answer's). Events are committed after all that, so their `at` is none of these moments.
Times here are microseconds since the Unix epoch, 0 where an older log has none.
"""

from __future__ import annotations

from caxton.domain.events import (
    AgentTrapped,
    MessageHandled,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)


def queue_wait_us(sent_at_ms: int, dequeued_us: int) -> int:
    """How long a message committed at `sent_at_ms` waited in the mailbox; 0 for one
    handled in the round that commits it (ADR 0017), which is taken before its commit."""
    return max(0, dequeued_us - sent_at_ms * 1000)


def ended_us(event: MessageHandled | AgentTrapped) -> int:
    """When the guest call ended; 0 when its start was not recorded."""
    return event.started_us + event.duration_us if event.started_us else 0


def happened_ms(recorded: Recorded) -> int:
    """When a step really happened, in milliseconds since the Unix epoch: a tool call
    when it was made or answered, a handling when it ended; the commit time for the
    other events and for what an older log did not time."""
    event = recorded.event
    if isinstance(event, ToolCalled | ToolReturned | ToolFailed) and event.at_us:
        return event.at_us // 1000
    if isinstance(event, MessageHandled | AgentTrapped) and event.started_us:
        return ended_us(event) // 1000
    return recorded.at
