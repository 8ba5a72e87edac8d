"""Where an instance's memory begins and its last snapshot: the fold of the agents (what a
running node reads) and `lineage` over the agent's stream (what a rebuild at a past
position reads) always agree; and what a rebuild re-executes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.agents import NO_AGENTS, Agents, evolve
from caxton.domain.events import (
    AgentDeployed,
    AgentRemoved,
    AgentSnapshotted,
    AgentStarted,
    Event,
    MessageHandled,
    MessageQuarantined,
    MessageSent,
    Recorded,
)
from caxton.domain.ids import agent_stream
from caxton.domain.memory import Inputs, lineage, without

deploys = st.builds(
    lambda replicas, keep: AgentDeployed(
        agent="a", component="c", component_size=1, replicas=replicas, keep_memory=keep
    ),
    st.integers(1, 3),
    st.booleans(),
)
starts = st.builds(
    lambda replica, memory: AgentStarted(agent="a", replica=replica, incarnation=1, memory=memory),
    st.integers(0, 2),
    st.booleans(),
)
snapshots = st.builds(
    lambda replica: AgentSnapshotted(agent="a", replica=replica, handled=1, state="{}"),
    st.integers(0, 2),
)
removals = st.just(AgentRemoved(agent="a"))


def recorded(events: list[Event]) -> list[Recorded]:
    return [
        Recorded(position=i, stream=agent_stream("a"), version=i, at=i, event=e)
        for i, e in enumerate(events, start=1)
    ]


@given(st.lists(st.one_of(deploys, starts, snapshots, removals), max_size=25))
def test_the_fold_and_lineage_agree_on_every_replica(events: list[Event]) -> None:
    log = recorded(events)
    agents: Agents = NO_AGENTS
    for r in log:
        agents = evolve(agents, r)
    agent = agents.get("a")
    for replica in range(3):
        found = lineage(log, replica)
        instance = agent.instances[replica] if agent and replica < len(agent.instances) else None
        folded_origin = instance.memory_from if instance else 0
        folded_snapshot = instance.snapshot_at if instance else 0
        if instance is None:
            continue  # no such replica now: nothing to rebuild
        assert (found.origin.position if found.origin else 0) == folded_origin
        assert (found.snapshot.position if found.snapshot else 0) == folded_snapshot


def test_a_removed_agent_s_memory_does_not_come_back_with_a_kept_redeploy() -> None:
    deploy = AgentDeployed(agent="a", component="c", component_size=1, replicas=1)
    log = recorded(
        [
            deploy,
            AgentStarted(agent="a", replica=0, incarnation=1, memory=True),
            AgentRemoved(agent="a"),
            AgentDeployed(agent="a", component="c", component_size=1, replicas=1, keep_memory=True),
        ]
    )
    assert lineage(log, 0).origin is None


def message(i: int) -> AclMessage:
    return AclMessage(
        id=f"m{i}",
        performative=Performative.REQUEST,
        sender="client:x",
        receivers=("a",),
        conversation_id=f"c{i}",
    )


def test_inputs_skip_what_this_build_quarantined_and_fetch_earlier_sends() -> None:
    events: list[Event] = [
        AgentDeployed(agent="a", component="v2", component_size=1, replicas=1),
        MessageHandled(message_id="m1", conversation_id="c1", agent="a", replica=0),
        MessageSent(message=message(2), deliveries=("a#0",)),
        MessageHandled(message_id="m2", conversation_id="c2", agent="a", replica=0),
        MessageSent(message=message(3), deliveries=("a#0",)),
        MessageHandled(message_id="m3", conversation_id="c3", agent="a", replica=0),
        MessageQuarantined(
            agent="a", replica=0, message_id="m2", conversation_id="c2", reason="t", component="v2"
        ),
        MessageQuarantined(
            agent="a", replica=0, message_id="m3", conversation_id="c3", reason="t", component="v1"
        ),
    ]
    log = recorded(events)
    inputs = Inputs("a", 0)
    inputs.deployed = events[0]  # type: ignore[assignment]
    for r in log[1:]:
        inputs.add(r)
    assert inputs.missing() == {"c1"}  # m1 was sent before the scan began
    inputs.add_message(
        Recorded(
            position=0,
            stream="conversation:c1",
            version=1,
            at=0,
            event=MessageSent(message=message(1), deliveries=("a#0",)),
        )
    )
    plan = inputs.plan()
    # m2 quarantined by this build is skipped; m3 only by another build is tried again
    assert [h.message.id for h in plan.handlings] == ["m1", "m3"]
    assert [h.message.id for h in without(plan, "m3").handlings] == ["m1"]
