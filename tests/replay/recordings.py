"""A recorded contract-net conversation, built event by event as the runtime records one.

Deterministic (fixed ids and times), so the TUI's snapshots and the exporters' output
never change between runs.
"""

from __future__ import annotations

import json

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    AgentTrapped,
    HostCall,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.ids import sent_message_id
from tests.domain.domain_histories import Log

P = Performative
CONVERSATION = "7f3a9c2e1b4d4e8f9a0b1c2d3e4f5a6b-cnet"
START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
BIDDERS = {"bidder-a": 12, "bidder-b": 9, "bidder-c": 15}


def contract_net(*, violated: bool = False, trap: bool = False) -> list[Recorded]:
    """A manager asked by a client to buy, three bidders, one award, one inform back.

    `violated`: the manager accepts a bidder that never proposed (bidder-c refuses).
    `trap`: bidder-a traps on the cfp (so it never answers)."""
    log = Log(at=START_MS - 5_000)
    for name, capabilities in [("manager", ()), *((b, ("bidding",)) for b in BIDDERS)]:
        log.add(
            AgentDeployed(
                agent=name,
                component=f"sha256:{name}",
                component_size=19_000_000,
                replicas=1,
                capabilities=capabilities,
            )
        )
        log.add(AgentStarted(agent=name, replica=0, incarnation=1))
    log.at = START_MS

    def send(message: AclMessage, deliveries: tuple[str, ...], cause: str = "") -> AclMessage:
        log.add(MessageSent(message=message, deliveries=deliveries, cause=cause))
        log.at += 1
        return message

    def handled(message: AclMessage, agent: str, *journal: HostCall, error: str = "") -> None:
        log.add(
            MessageHandled(
                message_id=message.id,
                conversation_id=CONVERSATION,
                agent=agent,
                replica=0,
                journal=journal,
                duration_us=180,
                error=error,
            )
        )
        log.at += 1

    def reply(
        cause: AclMessage,
        sender: str,
        index: int,
        performative: P,
        to: str,
        content: object,
        protocol: str = "fipa-contract-net",
    ) -> AclMessage:
        return AclMessage(
            id=sent_message_id(cause.id, sender, index),
            performative=performative,
            sender=sender,
            receivers=(to,),
            content=json.dumps(content),
            protocol=protocol,
            conversation_id=CONVERSATION,
            in_reply_to=cause.reply_with,
        )

    ask = send(
        AclMessage(
            id="a1b2c3d4e5f60718293a4b5c6d",
            performative=P.REQUEST,
            sender="client:cli",
            receivers=("manager",),
            content=json.dumps({"task": "buy", "item": "widget", "quantity": 3}),
            conversation_id=CONVERSATION,
        ),
        ("manager#0",),
    )
    cfp = AclMessage(
        id=sent_message_id(ask.id, "manager", 0),
        performative=P.CFP,
        sender="manager",
        receivers=("capability:bidding",),
        content=json.dumps({"task": "buy", "item": "widget", "quantity": 3}),
        protocol="fipa-contract-net",
        conversation_id=CONVERSATION,
        reply_with="cfp-1",
        reply_by=START_MS + 2_000,
    )
    handled(ask, "manager", HostCall(kind="now", value=str(START_MS)))
    send(cfp, tuple(f"{b}#0" for b in BIDDERS), cause=ask.id)
    proposals: list[AclMessage] = []
    for bidder, price in BIDDERS.items():
        if trap and bidder == "bidder-a":
            log.add(
                AgentTrapped(
                    agent=bidder,
                    replica=0,
                    incarnation=1,
                    kind="trap",
                    reason="unreachable",
                    message_id=cfp.id,
                    conversation_id=CONVERSATION,
                )
            )
            continue
        if violated and bidder == "bidder-c":
            answer = reply(cfp, bidder, 0, P.REFUSE, "manager", {"reason": "busy"})
        else:
            answer = reply(cfp, bidder, 0, P.PROPOSE, "manager", {"price": price})
            proposals.append(answer)
        handled(cfp, bidder)
        send(answer, ("manager#0",), cause=cfp.id)
    for proposal in proposals:
        handled(proposal, "manager")
    best = min(proposals, key=lambda p: json.loads(p.content)["price"])
    for proposal in proposals:
        decision = reply(
            proposal,
            "manager",
            0,
            P.ACCEPT_PROPOSAL if proposal is best else P.REJECT_PROPOSAL,
            proposal.sender,
            {"price": json.loads(proposal.content)["price"]},
        )
        send(decision, (f"{proposal.sender}#0",), cause=proposal.id)
    if violated:
        wrong = reply(best, "manager", 9, P.ACCEPT_PROPOSAL, "bidder-c", {"price": 15})
        send(wrong, ("bidder-c#0",), cause=best.id)
    done = reply(best, best.sender, 0, P.INFORM, "manager", {"delivered": 3})
    send(done, ("manager#0",), cause=best.id)
    handled(done, "manager")
    result = {"winner": best.sender, "price": 9}
    send(reply(done, "manager", 0, P.INFORM, "client:cli", result, ""), ("client:cli",), done.id)
    return log.recorded
