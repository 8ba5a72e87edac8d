"""Which accepted deliveries were never handled: what a restarted node must deliver again."""

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
from caxton.domain.ids import instance_key, is_client, split_instance_key


def pending_deliveries(history: Iterable[Recorded]) -> list[tuple[AclMessage, str]]:
    """Deliveries (message, `name#replica`) in log order that no handling, dead letter,
    stop or removal has settled. Deliveries to clients are not redelivered."""
    pending: dict[tuple[str, str], AclMessage] = {}
    for recorded in history:
        match recorded.event:
            case MessageSent(message=message, deliveries=deliveries):
                for target in deliveries:
                    if not is_client(target):
                        pending[(message.id, target)] = message
            case MessageHandled(message_id=mid, agent=agent, replica=replica):
                pending.pop((mid, instance_key(agent, replica)), None)
            case MessageDeadLettered(message_id=mid, receiver=receiver):
                pending.pop((mid, receiver), None)
            case AgentStopped(agent=agent) | AgentRemoved(agent=agent):
                for key in [k for k in pending if split_instance_key(k[1])[0] == agent]:
                    del pending[key]
            case _:
                pass
    return [(message, target) for (_, target), message in pending.items()]
