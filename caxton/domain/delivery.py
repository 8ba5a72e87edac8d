"""Which accepted deliveries were never handled: what a restarted node must deliver again.

A fold like the others, so a node can compute it page by page while it reads the log.
"""

from __future__ import annotations

from collections.abc import Iterable

from caxton.domain.acl import AclMessage
from caxton.domain.events import (
    AgentRemoved,
    AgentStopped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import instance_key, is_client, split_instance_key

# (message id, `name#replica`) -> (position of the send, index among its deliveries, message)
PendingDeliveries = FrozenMap[tuple[str, str], tuple[int, int, AclMessage]]
NO_PENDING: PendingDeliveries = FrozenMap()


def settle(pending: PendingDeliveries, recorded: Recorded) -> PendingDeliveries:
    """The deliveries still open after one more event. Deliveries to clients are not
    kept: a client that went away cannot be delivered to again."""
    match recorded.event:
        case MessageSent(message=message, deliveries=deliveries):
            for index, target in enumerate(deliveries):
                if not is_client(target):
                    pending = pending.set((message.id, target), (recorded.position, index, message))
            return pending
        case MessageHandled(message_id=mid, agent=agent, replica=replica):
            return pending.delete((mid, instance_key(agent, replica)))
        case MessageDeadLettered(message_id=mid, receiver=receiver):
            return pending.delete((mid, receiver))
        case AgentStopped(agent=agent) | AgentRemoved(agent=agent):
            for key in [k for k in pending if split_instance_key(k[1])[0] == agent]:
                pending = pending.delete(key)
            return pending
        case _:
            return pending


def in_log_order(pending: PendingDeliveries) -> list[tuple[AclMessage, str]]:
    """The open deliveries as (message, `name#replica`), in the order they were accepted."""
    ordered = sorted(pending.items(), key=lambda item: item[1][:2])
    return [(message, target) for (_, target), (_, _, message) in ordered]


def pending_deliveries(history: Iterable[Recorded]) -> list[tuple[AclMessage, str]]:
    """Deliveries in log order that no handling, dead letter, stop or removal settled."""
    pending = NO_PENDING
    for recorded in history:
        pending = settle(pending, recorded)
    return in_log_order(pending)
