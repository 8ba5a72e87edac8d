"""Logs recorded the way the runtime records them, trace context included.

Messages get their ids and `traceparent` from the domain's own functions
(`stamped`, `sent_by`, `platform_failure`), handling batches carry the handled
message's context, and `MessageSent.cause` names the message being handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from caxton.domain.acl import AclMessage, Performative, from_client
from caxton.domain.events import (
    AgentTrapped,
    Event,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    stream_of,
)
from caxton.domain.sending import platform_failure, sent_by
from caxton.domain.tracing import stamped

P = Performative
START_MS = 1_764_000_000_000
BIDDERS = ("bidder-a", "bidder-b", "bidder-c")


@dataclass
class TracedLog:
    at: int = START_MS
    recorded: list[Recorded] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def commit(self, *events: Event, traceparent: str = "") -> None:
        for event in events:
            stream = stream_of(event)
            self.versions[stream] = self.versions.get(stream, 0) + 1
            self.recorded.append(
                Recorded(
                    position=len(self.recorded) + 1,
                    stream=stream,
                    version=self.versions[stream],
                    at=self.at,
                    event=event,
                    traceparent=traceparent,
                )
            )
        self.at += 2

    def from_client(
        self,
        performative: Performative,
        receiver: str,
        delivery: str,
        *,
        message_id: str = "c0",
        traceparent: str = "",
        protocol: str = "",
        content: str = "{}",
    ) -> AclMessage:
        message = stamped(
            from_client(
                AclMessage(
                    id=message_id,
                    performative=performative,
                    sender="",
                    receivers=(receiver,),
                    protocol=protocol,
                    content=content,
                    traceparent=traceparent,
                ),
                id=message_id,
                sender="client:cli",
                conversation_id="conv-1",
            )
        )
        self.commit(MessageSent(message=message, deliveries=(delivery,)))
        return message

    def handle(
        self,
        cause: AclMessage,
        agent: str,
        *sends: tuple[Performative, tuple[str, ...], tuple[str, ...]],
        duration_us: int = 500,
        error: str = "",
    ) -> list[AclMessage]:
        """`agent` handles `cause` and sends (performative, receivers, deliveries) each."""
        sent: list[AclMessage] = []
        events: list[Event] = [
            MessageHandled(
                message_id=cause.id,
                conversation_id=cause.conversation_id,
                agent=agent,
                replica=0,
                duration_us=duration_us,
                error=error,
            )
        ]
        for index, (performative, receivers, deliveries) in enumerate(sends):
            draft = AclMessage(
                id="",
                performative=performative,
                sender="",
                receivers=receivers,
                content="{}",
                protocol=cause.protocol,
                conversation_id=cause.conversation_id,
                in_reply_to=cause.reply_with,
            )
            message = sent_by(draft, agent=agent, cause=cause, index=index)
            sent.append(message)
            events.append(MessageSent(message=message, deliveries=deliveries, cause=cause.id))
        self.commit(*events, traceparent=cause.traceparent)
        return sent

    def trap(self, cause: AclMessage, agent: str) -> AclMessage:
        """`agent` traps on `cause`: dead letter, and a failure back to the sender."""
        failure = platform_failure(cause, f"{agent}#0: trap: unreachable")
        assert failure is not None
        self.commit(
            AgentTrapped(
                agent=agent,
                replica=0,
                incarnation=1,
                kind="trap",
                reason="unreachable",
                message_id=cause.id,
                conversation_id=cause.conversation_id,
                duration_us=300,
            ),
            MessageDeadLettered(
                message_id=cause.id,
                conversation_id=cause.conversation_id,
                receiver=f"{agent}#0",
                reason="trap: unreachable",
            ),
            MessageSent(message=failure, deliveries=_instances((cause.sender,)), cause=cause.id),
            traceparent=cause.traceparent,
        )
        return failure


def contract_net() -> tuple[TracedLog, dict[str, AclMessage]]:
    """A client asks a manager to buy; the manager calls for proposals from three
    bidders (by capability), accepts bidder-b and tells the client who won."""
    log = TracedLog()
    messages: dict[str, AclMessage] = {}
    request = log.from_client(P.REQUEST, "manager", "manager#0", protocol="fipa-request")
    messages["request"] = request
    (cfp,) = log.handle(request, "manager", (P.CFP, ("capability:bidding",), _instances(BIDDERS)))
    messages["cfp"] = cfp
    for bidder in BIDDERS:
        (propose,) = log.handle(cfp, bidder, (P.PROPOSE, ("manager",), ("manager#0",)))
        messages[f"propose {bidder}"] = propose
    log.handle(messages["propose bidder-a"], "manager")
    log.handle(messages["propose bidder-b"], "manager")
    awards = log.handle(
        messages["propose bidder-c"],
        "manager",
        *(
            (P.ACCEPT_PROPOSAL if b == "bidder-b" else P.REJECT_PROPOSAL, (b,), (f"{b}#0",))
            for b in BIDDERS
        ),
    )
    for bidder, award in zip(BIDDERS, awards, strict=True):
        messages[f"award {bidder}"] = award
    (inform,) = log.handle(
        messages["award bidder-b"], "bidder-b", (P.INFORM, ("manager",), ("manager#0",))
    )
    messages["inform"] = inform
    (done,) = log.handle(inform, "manager", (P.INFORM, ("client:cli",), ("client:cli",)))
    messages["done"] = done
    for bidder in ("bidder-a", "bidder-c"):
        log.handle(messages[f"award {bidder}"], bidder)
    return log, messages


def _instances(addresses: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a if a.startswith("client:") else f"{a}#0" for a in addresses)
