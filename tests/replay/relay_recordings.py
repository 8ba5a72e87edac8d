"""A recorded relay: a client asks `relay`, which asks `quoter`, which answers with the
content it was sent; the relay passes the answer back to whoever asked it first. And
`Agents`, the same two agents in Python, to fork it with (`caxton.replay.fork.Runner`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    HostCall,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.ids import sent_message_id
from caxton.replay.fork import Handling
from caxton.replay.reexec import Script
from tests.domain.domain_histories import Log

RELAYED = "relayed-conversation"
ASKED = AclMessage(
    id="a1",
    performative=Performative.REQUEST,
    sender="client:c",
    receivers=("relay",),
    content=json.dumps({"price": 7}),
    conversation_id=RELAYED,
)


def answer(agent: str, message: AclMessage, asker: str) -> tuple[AclMessage, ...]:
    """What each agent sends on `message`; the relay answers `asker` (what it remembers)."""

    def sent(to: str, performative: Performative) -> AclMessage:
        return AclMessage(
            id=sent_message_id(message.id, agent, 0),
            performative=performative,
            sender=agent,
            receivers=(to,),
            content=message.content,
            conversation_id=message.conversation_id,
        )

    if agent == "quoter":
        return (sent(message.sender, Performative.INFORM),)
    if message.performative == Performative.REQUEST:
        return (sent("quoter", Performative.REQUEST),)
    return (sent(asker, Performative.INFORM),) if asker else ()


def relayed() -> list[Recorded]:
    """7 steps: asked, relay handles, relay asks quoter, quoter handles, quoter informs,
    relay handles, relay informs the client."""
    log = Log(at=1_764_000_000_000)
    for name in ("relay", "quoter"):
        log.add(AgentDeployed(agent=name, component=f"sha256:{name}", component_size=1, replicas=1))
        log.add(AgentStarted(agent=name, replica=0, incarnation=1))
    queue = [(ASKED, "")]
    asker = ""
    log.add(MessageSent(message=ASKED, deliveries=("relay#0",)))
    while queue:
        message, _ = queue.pop(0)
        for receiver in message.receivers:
            if receiver.startswith("client:"):
                continue
            log.add(
                MessageHandled(
                    message_id=message.id,
                    conversation_id=RELAYED,
                    agent=receiver,
                    replica=0,
                    journal=(HostCall(kind="now", value="1"),),
                    duration_us=5,
                )
            )
            if receiver == "relay" and not asker:
                asker = message.sender
            for out in answer(receiver, message, asker):
                deliveries = tuple(
                    r if r.startswith("client:") else f"{r}#0" for r in out.receivers
                )
                log.add(MessageSent(message=out, deliveries=deliveries, cause=message.id))
                queue.append((out, ""))
    return log.recorded


@dataclass
class Agents:
    """The relay and the quoter as Python: a `Runner` for `fork`."""

    started: list[tuple[str, int]] = field(default_factory=list)
    handled: list[tuple[str, AclMessage]] = field(default_factory=list)
    asker: dict[str, str] = field(default_factory=dict)

    def start(self, plan: Script, replica: int) -> str:
        self.started.append((plan.agent, replica))
        self.asker.pop(plan.agent, None)
        return ""

    def handle(
        self, agent: str, replica: int, message: AclMessage, journal: Sequence[HostCall]
    ) -> Handling:
        self.handled.append((agent, message))
        if agent == "relay" and agent not in self.asker:
            self.asker[agent] = message.sender
        return Handling(sent=answer(agent, message, self.asker.get(agent, "")))
