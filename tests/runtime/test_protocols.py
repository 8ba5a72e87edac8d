"""Protocol checks on live conversations: breaking fipa-contract-net is flagged, with the reason."""

from __future__ import annotations

from caxton.domain.acl import AclMessage, Performative
from caxton.shell.runtime.node import Node

MANAGER = "client:manager"
BIDDER = "client:bidder"


def message(
    performative: Performative,
    sender: str,
    receiver: str,
    conversation: str,
    *,
    reply_by: int | None = None,
) -> AclMessage:
    return AclMessage(
        id="",
        performative=performative,
        sender=sender,
        receivers=(receiver,),
        content="{}",
        protocol="fipa-contract-net",
        conversation_id=conversation,
        reply_by=reply_by,
    )


async def test_a_propose_after_reply_by_shows_the_conversation_as_violated(node: Node) -> None:
    past = node.clock.now_ms() - 1_000
    await node.send(message(Performative.CFP, MANAGER, BIDDER, "late", reply_by=past))
    await node.send(message(Performative.PROPOSE, BIDDER, MANAGER, "late"))

    conversation = node.world.conversations["late"]

    assert conversation.outcome == "violated"
    assert "propose from client:bidder " in conversation.violations[0].reason
    assert "after the cfp's reply-by" in conversation.violations[0].reason


async def test_accepting_the_same_proposal_twice_shows_the_conversation_as_violated(
    node: Node,
) -> None:
    await node.send(message(Performative.CFP, MANAGER, BIDDER, "twice"))
    await node.send(message(Performative.PROPOSE, BIDDER, MANAGER, "twice"))
    await node.send(message(Performative.ACCEPT_PROPOSAL, MANAGER, BIDDER, "twice"))
    assert node.world.conversations["twice"].outcome == "open"

    await node.send(message(Performative.ACCEPT_PROPOSAL, MANAGER, BIDDER, "twice"))

    conversation = node.world.conversations["twice"]
    assert conversation.outcome == "violated"
    assert "accept-proposal" in conversation.violations[0].reason
