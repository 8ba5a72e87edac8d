"""The contract-net recording as a 3-node cluster would log it, with a takeover midway.

Shards: manager 52 on n0, bidder-a 35 and bidder-b 23 on n1, bidder-c 45 on n2. After
the three proposals are sent, n1's lease on shard 23 runs out and n2 claims it (epoch 2):
bidder-b restarts on n2, and its `inform` is sent from there. A claim of a shard no
participant is on, and a second claim of 23 after the last step, are in the log but are
not steps of this conversation.
"""

from __future__ import annotations

from caxton.domain.events import (
    AgentStarted,
    Event,
    MessageSent,
    Recorded,
    ShardClaimed,
)
from caxton.domain.frozen import replace
from caxton.domain.placement import shard_of
from tests.domain.domain_histories import Log
from tests.replay.recordings import contract_net

HOLDERS = {"manager": "n0", "bidder-a": "n1", "bidder-b": "n1", "bidder-c": "n2"}
BIDDER_B = shard_of("bidder-b")
UNRELATED = next(s for s in range(64) if s not in {shard_of(a) for a in HOLDERS})
TAKEOVER = ShardClaimed(shard=BIDDER_B, node="n2", epoch=2, previous="n1", reason="expired")
ELSEWHERE = ShardClaimed(shard=UNRELATED, node="n0", epoch=5, previous="n2", reason="expired")
LATER = ShardClaimed(shard=BIDDER_B, node="n0", epoch=3, previous="n2", reason="released")
ACCEPTED_BY = "n0"
"""The node the client called (only a stamped log says so)."""


def clustered_contract_net(*, stamped: bool = False) -> list[Recorded]:
    """The events of `contract_net()` with the cluster's claims among them; `stamped`:
    each event names the node that committed it, as a cluster's node writes them now."""
    log = Log(at=1_763_999_990_000)
    node_by_position: dict[int, str] = {}

    def add(event: Event, at: int, node: str) -> None:
        node_by_position[log.add(event, at=at).position] = node

    for agent in HOLDERS:
        shard = shard_of(agent)
        if not any(
            isinstance(r.event, ShardClaimed) and r.event.shard == shard for r in log.recorded
        ):
            claim = ShardClaimed(shard=shard, node=HOLDERS[agent], epoch=1, reason="unowned")
            add(claim, log.at, HOLDERS[agent])
    holders = dict(HOLDERS)
    proposals = 0
    for recorded in contract_net():
        event = recorded.event
        add(event, recorded.at, _committer(event, holders))
        if isinstance(event, MessageSent) and event.message.performative.value == "propose":
            proposals += 1
            if proposals == 3:
                add(TAKEOVER, recorded.at + 1, "n2")
                add(ELSEWHERE, recorded.at + 1, "n0")
                holders["bidder-b"] = "n2"
                add(AgentStarted(agent="bidder-b", replica=0, incarnation=2), recorded.at + 1, "n2")
    add(LATER, log.at + 10, "n0")
    if not stamped:
        return log.recorded
    return [replace(r, node=node_by_position[r.position]) for r in log.recorded]


def _committer(event: Event, holders: dict[str, str]) -> str:
    agent = getattr(event, "agent", "")
    if isinstance(event, MessageSent):
        sender = event.message.sender
        agent = "" if sender.startswith("client:") else sender
    return holders.get(agent, ACCEPTED_BY)
