"""Pending deliveries: what a restarted node must deliver again, in the order it was accepted."""

from __future__ import annotations

from hypothesis import given, settings

from caxton.domain import MessageDeadLettered, MessageHandled, MessageSent, Recorded
from caxton.domain.delivery import pending_deliveries
from caxton.domain.events import AgentRemoved, AgentStopped
from tests.domain.domain_histories import Log, P, histories


def test_a_handled_delivery_is_settled_and_the_others_stay_in_log_order() -> None:
    log = Log()
    first = log.send(P.INFORM, "client:c", "bob", "carol")
    second = log.send(P.INFORM, "client:c", "bob")
    log.add(MessageHandled(message_id="m1", conversation_id="c1", agent="bob", replica=0))

    pending = pending_deliveries(log.recorded)

    assert [(m.id, target) for m, target in pending] == [("m1", "carol#0"), ("m2", "bob#0")]
    assert first.position < second.position


def test_dead_letters_stops_and_clients_settle_deliveries() -> None:
    log = Log()
    log.send(P.INFORM, "alice", "bob", "client:x")
    log.add(
        MessageDeadLettered(message_id="m1", conversation_id="c1", receiver="bob#0", reason="r")
    )
    log.send(P.INFORM, "alice", "carol")
    log.add(AgentStopped(agent="carol"))

    assert pending_deliveries(log.recorded) == []


@settings(max_examples=100, deadline=None)
@given(histories())
def test_pending_deliveries_agree_with_a_naive_reading_of_the_log(
    history: list[Recorded],
) -> None:
    def settled(message_id: str, target: str, after: int) -> bool:
        agent = target.rpartition("#")[0]
        for later in history[after:]:
            match later.event:
                case MessageHandled(message_id=mid, agent=a, replica=r):
                    if mid == message_id and f"{a}#{r}" == target:
                        return True
                case MessageDeadLettered(message_id=mid, receiver=receiver):
                    if mid == message_id and receiver == target:
                        return True
                case AgentStopped(agent=a) | AgentRemoved(agent=a):
                    if a == agent:
                        return True
        return False

    expected = [
        (recorded.event.message.id, target)
        for i, recorded in enumerate(history)
        if isinstance(recorded.event, MessageSent)
        for target in recorded.event.deliveries
        if not target.startswith("client:") and not settled(recorded.event.message.id, target, i)
    ]

    assert [(m.id, target) for m, target in pending_deliveries(history)] == expected
