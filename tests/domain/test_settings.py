"""`caxton config set` in the domain: the fold, where each value came from, validation."""

from __future__ import annotations

import pytest

from caxton.domain import NO_AGENTS, AgentDeployed, Agents, Limits, evolve_agents
from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import AgentReconfigured, AgentStarted
from caxton.domain.settings import effective_settings, validate_reconfiguration
from tests.domain.domain_histories import Log


def folded(log: Log) -> Agents:
    agents = NO_AGENTS
    for recorded in log.recorded:
        agents = evolve_agents(agents, recorded)
    return agents


def deployed(**limits: int) -> Log:
    log = Log()
    log.add(
        AgentDeployed(
            agent="pricer",
            component="sha256:1",
            component_size=10,
            replicas=2,
            limits=Limits(**limits),
        )
    )
    log.add(AgentStarted(agent="pricer", replica=0, incarnation=1))
    return log


def sources(agents: Agents) -> dict[str, tuple[str, str]]:
    return {s.name: (s.value, s.source) for s in effective_settings(agents["pricer"])}


def test_each_setting_says_whether_it_is_the_default_or_the_deploys() -> None:
    settings = sources(folded(deployed(timeout_ms=200)))

    assert settings["timeout"] == ("200ms", "deploy")
    assert settings["memory"] == ("64MiB", "default")
    assert settings["restart.max"] == ("3", "default")
    assert settings["circuit-breaker.timeout"] == ("each server's", "default")
    assert settings["tools"] == ("none", "default")


def test_config_set_changes_only_what_it_names_and_says_so() -> None:
    log = deployed(timeout_ms=200)
    log.add(AgentReconfigured(agent="pricer", timeout_ms=2_000, breaker_threshold=3))

    agents = folded(log)

    settings = sources(agents)
    assert settings["timeout"] == ("2s", "config set")
    assert settings["circuit-breaker.threshold"] == ("3", "config set")
    assert settings["memory"] == ("64MiB", "default")
    agent = agents["pricer"]
    assert agent.limits.timeout_ms == 2_000 and agent.breaker_threshold == 3
    assert agent.instances[0].lifecycle == "running"  # nothing restarts


def test_later_changes_add_up_and_a_redeploy_starts_again() -> None:
    log = deployed()
    log.add(AgentReconfigured(agent="pricer", mailbox=10))
    log.add(
        AgentReconfigured(
            agent="pricer", max_restarts=5, restart_window_ms=120_000, tools=("db.*",)
        )
    )
    changed = folded(log)["pricer"]
    assert changed.limits.mailbox == 10 and changed.restart.max_restarts == 5
    assert changed.restart.window_ms == 120_000 and changed.tools == ("db.*",)
    assert changed.reconfigured == ("mailbox", "restart.max", "restart.window", "tools")

    log.add(AgentDeployed(agent="pricer", component="sha256:2", component_size=10, replicas=1))

    assert sources(folded(log))["mailbox"] == ("1024", "default")


def test_the_effective_settings_are_a_function_of_the_log_alone() -> None:
    log = deployed()
    log.add(AgentReconfigured(agent="pricer", memory_bytes=128 << 20, breaker_timeout_ms=10_000))

    assert effective_settings(folded(log)["pricer"]) == effective_settings(folded(log)["pricer"])
    assert sources(folded(log))["circuit-breaker.timeout"] == ("10s", "config set")


def test_a_change_for_an_unknown_agent_changes_nothing() -> None:
    log = deployed()
    before = folded(log)
    log.add(AgentReconfigured(agent="ghost", timeout_ms=1_000))

    assert dict(folded(log).items()) == dict(before.items())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (AgentReconfigured(agent="a"), "settings"),
        (AgentReconfigured(agent="a", timeout_ms=0), "timeout"),
        (AgentReconfigured(agent="a", memory_bytes=1), "memory"),
        (AgentReconfigured(agent="a", mailbox=0), "mailbox"),
        (AgentReconfigured(agent="a", max_restarts=-1), "restart.max"),
        (AgentReconfigured(agent="a", restart_window_ms=10), "restart.window"),
        (AgentReconfigured(agent="a", breaker_timeout_ms=10**9), "circuit-breaker.timeout"),
        (AgentReconfigured(agent="a", breaker_threshold=0), "circuit-breaker.threshold"),
        (AgentReconfigured(agent="a", tools=("no dots",)), "tools"),
    ],
)
def test_a_setting_that_cannot_be_honoured_is_refused_by_name(
    change: AgentReconfigured, field: str
) -> None:
    with pytest.raises(InvalidAgentSpec) as refused:
        validate_reconfiguration(change)

    assert refused.value.field == field


def test_a_sensible_change_passes() -> None:
    validate_reconfiguration(
        AgentReconfigured(agent="a", timeout_ms=10_000, tools=("db.read_query", "time.*"))
    )
