"""The agent fold: replica lifecycles, redeploys, health and the status line."""

from __future__ import annotations

from caxton.domain import (
    NO_AGENTS,
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    Agents,
    AgentStarted,
    AgentState,
    AgentStopped,
    AgentTrapped,
    Health,
    MessageHandled,
    evolve_agents,
    health,
    status_line,
)
from tests.domain.domain_histories import Log


def folded(log: Log) -> Agents:
    agents = NO_AGENTS
    for recorded in log.recorded:
        agents = evolve_agents(agents, recorded)
    return agents


def running(name: str = "pricer", replicas: int = 3) -> Log:
    log = Log()
    log.add(AgentDeployed(agent=name, component="sha256:1", component_size=10, replicas=replicas))
    for r in range(replicas):
        log.add(AgentStarted(agent=name, replica=r, incarnation=r + 1))
    return log


def test_a_deployed_agent_has_one_waiting_instance_per_replica() -> None:
    log = Log()
    log.add(AgentDeployed(agent="pricer", component="sha256:1", component_size=10, replicas=2))
    agent = folded(log)["pricer"]
    assert [i.lifecycle for i in agent.instances] == ["deployed", "deployed"]
    assert status_line(agent) == "◌ Starting (0/2 instances healthy)"


def test_started_replicas_run_with_their_incarnation() -> None:
    agent = folded(running())["pricer"]
    assert [(i.lifecycle, i.incarnation) for i in agent.instances] == [
        ("running", 1),
        ("running", 2),
        ("running", 3),
    ]


def test_status_line_of_a_healthy_agent() -> None:
    assert status_line(folded(running())["pricer"]) == "✓ Running (3/3 instances healthy)"


def test_status_line_of_a_degraded_agent_names_the_failed_replica_and_its_trap() -> None:
    log = running()
    log.add(
        AgentTrapped(agent="pricer", replica=2, incarnation=3, kind="trap", reason="unreachable")
    )
    log.add(AgentFailed(agent="pricer", replica=2, reason="restarted 3 times in 60s; giving up"))
    log.add(
        AgentTrapped(agent="pricer", replica=1, incarnation=2, kind="timeout", reason="5000 ms")
    )
    agent = folded(log)["pricer"]
    assert health(agent) == Health(
        running=1,
        total=3,
        problems=("replica 1 trapped: timeout: 5000 ms", "replica 2 failed: trap: unreachable"),
    )
    assert status_line(agent) == (
        "✗ Degraded (1/3 instances healthy): "
        "replica 1 trapped: timeout: 5000 ms; replica 2 failed: trap: unreachable"
    )


def test_status_line_of_a_stopped_agent() -> None:
    log = running()
    log.add(AgentStopped(agent="pricer"))
    agent = folded(log)["pricer"]
    assert agent.status == "stopped"
    assert {i.lifecycle for i in agent.instances} == {"stopped"}
    assert status_line(agent) == "■ Stopped"


def test_status_line_when_every_replica_failed() -> None:
    log = running(replicas=1)
    log.add(AgentFailed(agent="pricer", replica=0, reason="giving up"))
    assert status_line(folded(log)["pricer"]) == (
        "✗ Failed (0/1 instances healthy): replica 0 failed: giving up"
    )


def test_a_trap_then_a_restart_records_the_restart_time_and_the_error() -> None:
    log = running(replicas=1)
    log.add(AgentTrapped(agent="pricer", replica=0, incarnation=1, kind="trap", reason="oops"))
    log.add(AgentRestarting(agent="pricer", replica=0, attempt=1, delay_ms=100), at=5_000)
    log.add(AgentStarted(agent="pricer", replica=0, incarnation=9))
    instance = folded(log)["pricer"].instances[0]
    assert instance.lifecycle == "running"
    assert instance.incarnation == 9
    assert instance.restarts == (5_000,)
    assert instance.traps == 1
    assert instance.last_error == "trap: oops"


def test_handled_messages_are_counted_per_instance() -> None:
    log = running(replicas=2)
    for _ in range(3):
        log.add(MessageHandled(message_id="m", conversation_id="c", agent="pricer", replica=1))
    assert [i.handled for i in folded(log)["pricer"].instances] == [0, 3]


def test_a_redeploy_replaces_the_agent_and_resets_its_instances() -> None:
    log = running(replicas=3)
    log.add(AgentTrapped(agent="pricer", replica=0, incarnation=1, kind="trap", reason="x"))
    log.add(AgentDeployed(agent="pricer", component="sha256:2", component_size=20, replicas=1))
    agent = folded(log)["pricer"]
    assert agent.component == "sha256:2"
    assert len(agent.instances) == 1
    assert agent.instances[0].traps == 0


def test_a_removed_agent_is_gone() -> None:
    log = running()
    log.add(AgentRemoved(agent="pricer"))
    assert "pricer" not in folded(log)


def test_events_about_unknown_agents_or_replicas_change_nothing() -> None:
    log = running(replicas=1)
    before = folded(log)
    log.add(AgentStarted(agent="ghost", replica=0, incarnation=1))
    log.add(AgentFailed(agent="pricer", replica=7, reason="no such replica"))
    log.add(AgentStopped(agent="ghost"))
    assert folded(log) == before


def test_agent_state_is_immutable() -> None:
    agent = folded(running())["pricer"]
    assert isinstance(agent, AgentState)
    try:
        agent.status = "stopped"  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("AgentState accepted an assignment")
