"""Properties of the whole fold over generated, plausible runtime histories."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caxton.domain import (
    EMPTY,
    AgentDeployed,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ShardClaimed,
    ShardReleased,
    World,
    alive,
    evolve,
    fold,
    left,
    owner,
)
from tests.domain.domain_histories import Log, P, histories

fast = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@fast
@given(histories(), st.data())
def test_folding_a_prefix_then_the_rest_equals_folding_the_whole(
    log: list[Recorded], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    assert fold(log[cut:], fold(log[:cut])) == fold(log)


@fast
@given(histories())
def test_every_step_equals_the_fold_of_the_events_so_far(log: list[Recorded]) -> None:
    world = EMPTY
    for n, recorded in enumerate(log, start=1):
        world = evolve(world, recorded)
        assert world.position == recorded.position
        if n % 7 == 0 or n == len(log):
            assert world == fold(log[:n])


@fast
@given(histories())
def test_membership_never_holds_a_node_that_is_both_alive_and_left(log: list[Recorded]) -> None:
    world = EMPTY
    for recorded in log:
        world = evolve(world, recorded)
        assert not alive(world.membership) & left(world.membership)
        started = {
            r.event.node for r in log[: recorded.position] if isinstance(r.event, NodeStarted)
        }
        assert set(world.membership) == started


@fast
@given(histories())
def test_a_shard_is_held_by_the_last_node_to_claim_it_until_released_or_gone(
    log: list[Recorded],
) -> None:
    world = EMPTY
    holder: dict[int, str] = {}
    for recorded in log:
        world = evolve(world, recorded)
        match recorded.event:
            case ShardClaimed(shard=shard, node=node) if node in world.membership:
                holder[shard] = node
            case ShardClaimed(shard=shard):
                holder.pop(shard, None)
            case ShardReleased(shard=shard, node=node) if holder.get(shard) == node:
                del holder[shard]
            case NodeStopped(node=node) | NodeStarted(node=node):
                # a new incarnation holds nothing until it claims again
                holder = {s: n for s, n in holder.items() if n != node}
        held = [(s, m.node) for m in world.membership.values() for s in m.shards]
        assert sorted(held) == sorted(holder.items())  # one holder a shard, at most
        for shard, node in holder.items():
            assert owner(world.membership, shard) == node


@fast
@given(histories())
def test_conversation_counts_and_outcomes_agree_with_the_log(log: list[Recorded]) -> None:
    world = fold(log)
    sent = Counter(r.event.message.conversation_id for r in log if isinstance(r.event, MessageSent))
    for cid, count in sent.items():
        conversation = world.conversations[cid]
        assert conversation.message_count == count
        assert (conversation.outcome == "violated") == bool(conversation.violations)
        assert conversation.started_at <= conversation.last_at


@fast
@given(histories())
def test_every_agent_in_the_world_was_deployed_and_has_its_replicas(log: list[Recorded]) -> None:
    world = fold(log)
    last_deploy = {r.event.agent: r.event for r in log if isinstance(r.event, AgentDeployed)}
    for name, agent in world.agents.items():
        assert len(agent.instances) == last_deploy[name].replicas
        assert [i.replica for i in agent.instances] == list(range(len(agent.instances)))


def test_the_empty_log_folds_to_the_empty_world() -> None:
    assert fold([]) == EMPTY == World()


def test_each_event_reaches_the_folds_that_care() -> None:
    log = Log()
    log.add(NodeStarted(node="node-a", address="127.0.0.1:7946", version="0.1.0"))
    log.add(AgentDeployed(agent="bob", component="sha256:1", component_size=1, replicas=1))
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    world = fold(log.recorded)
    assert set(world.membership) == {"node-a"}
    assert set(world.agents) == {"bob"}
    assert set(world.conversations) == {"c1"}
    assert world.position == 3
