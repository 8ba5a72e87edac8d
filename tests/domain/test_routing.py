"""Routing: names, capabilities, round-robin over replicas, and dead letters."""

from __future__ import annotations

from caxton.domain import (
    NO_AGENTS,
    NO_CURSOR,
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    Agents,
    AgentStarted,
    AgentStopped,
    Route,
    RouteCursor,
    evolve_agents,
    route,
)
from tests.domain.domain_histories import Log, P, message


def world(*deployments: tuple[str, int, tuple[str, ...]]) -> Log:
    log = Log()
    for name, replicas, capabilities in deployments:
        log.add(
            AgentDeployed(
                agent=name,
                component="sha256:1",
                component_size=1,
                replicas=replicas,
                capabilities=capabilities,
            )
        )
        for r in range(replicas):
            log.add(AgentStarted(agent=name, replica=r, incarnation=1))
    return log


def agents_of(log: Log) -> Agents:
    agents = NO_AGENTS
    for recorded in log.recorded:
        agents = evolve_agents(agents, recorded)
    return agents


def routes(performative: P, receivers: tuple[str, ...], agents: Agents, times: int) -> list[Route]:
    cursor: RouteCursor = NO_CURSOR
    found = []
    for _ in range(times):
        found.append(route(message(performative, receivers=receivers), agents, cursor))
        cursor = found[-1].cursor
    return found


def test_round_robin_over_replicas() -> None:
    agents = agents_of(world(("pricer", 3, ())))
    picked = [r.deliveries for r in routes(P.REQUEST, ("pricer",), agents, 4)]
    assert picked == [("pricer#0",), ("pricer#1",), ("pricer#2",), ("pricer#0",)]


def test_failed_replicas_are_skipped() -> None:
    log = world(("pricer", 3, ()))
    log.add(AgentFailed(agent="pricer", replica=1, reason="giving up"))
    picked = [r.deliveries for r in routes(P.REQUEST, ("pricer",), agents_of(log), 3)]
    assert picked == [("pricer#0",), ("pricer#2",), ("pricer#0",)]


def test_unknown_receiver_is_dead_lettered() -> None:
    found = route(message(receivers=("ghost", "pricer")), agents_of(world(("pricer", 1, ()))))
    assert found.deliveries == ("pricer#0",)
    assert found.dead_letters == (("ghost", "no agent named ghost"),)


def test_a_stopped_agent_is_dead_lettered() -> None:
    log = world(("pricer", 1, ()))
    log.add(AgentStopped(agent="pricer"))
    assert route(message(receivers=("pricer",)), agents_of(log)).dead_letters == (
        ("pricer", "agent pricer is stopped"),
    )


def test_a_removed_agent_is_unknown() -> None:
    log = world(("pricer", 1, ()))
    log.add(AgentRemoved(agent="pricer"))
    assert route(message(receivers=("pricer",)), agents_of(log)).dead_letters == (
        ("pricer", "no agent named pricer"),
    )


def test_an_agent_whose_replicas_all_failed_is_dead_lettered() -> None:
    log = world(("pricer", 2, ()))
    for r in range(2):
        log.add(AgentFailed(agent="pricer", replica=r, reason="giving up"))
    assert route(message(receivers=("pricer",)), agents_of(log)).dead_letters == (
        ("pricer", "agent pricer has failed"),
    )


def test_capability_cfp_goes_to_every_agent_declaring_it() -> None:
    agents = agents_of(
        world(("b-pricer", 2, ("pricing",)), ("a-pricer", 1, ("pricing", "search")), ("x", 1, ()))
    )
    found = route(message(P.CFP, receivers=("capability:pricing",)), agents)
    assert found.deliveries == ("a-pricer#0", "b-pricer#0")
    assert found.dead_letters == ()


def test_a_capability_request_goes_to_one_agent_at_a_time() -> None:
    agents = agents_of(world(("b", 1, ("pricing",)), ("a", 2, ("pricing",))))
    picked = [r.deliveries for r in routes(P.REQUEST, ("capability:pricing",), agents, 4)]
    assert picked == [("a#0",), ("b#0",), ("a#1",), ("b#0",)]


def test_a_capability_nobody_declares_is_dead_lettered() -> None:
    found = route(message(receivers=("capability:weather",)), agents_of(world(("a", 1, ()))))
    assert found.dead_letters == (("capability:weather", "no agent has capability weather"),)


def test_a_capability_whose_agents_are_all_stopped_is_dead_lettered() -> None:
    log = world(("a", 1, ("pricing",)))
    log.add(AgentStopped(agent="a"))
    found = route(message(receivers=("capability:pricing",)), agents_of(log))
    assert found.dead_letters == (
        ("capability:pricing", "no running agent has capability pricing"),
    )


def test_a_receiver_listed_twice_is_delivered_once() -> None:
    agents = agents_of(world(("pricer", 2, ())))
    found = route(message(receivers=("pricer", "pricer", "client:cli", "client:cli")), agents)
    assert found.deliveries == ("pricer#0", "client:cli")
    assert found.cursor == {"pricer": 1}


def test_clients_are_delivered_as_addressed() -> None:
    found = route(message(receivers=("client:cli-7",)), NO_AGENTS)
    assert found == Route(deliveries=("client:cli-7",), dead_letters=(), cursor=NO_CURSOR)
