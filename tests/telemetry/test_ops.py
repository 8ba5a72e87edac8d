"""The live-operations API through the client: config set/get, top and debug agent."""

from __future__ import annotations

import time

import pytest

from caxton.client import InvalidArgument, NotFound
from caxton.domain.events import AgentReconfigured
from tests.support import wat
from tests.telemetry.conftest import Observed


async def test_config_set_is_recorded_applied_and_shown_with_its_source(
    observed: Observed,
) -> None:
    client = observed.client
    await client.deploy(wat("reply"), "echo", timeout_ms=200)

    settings = await client.config_set(
        "echo", timeout_ms=2_000, breaker_timeout_ms=10_000, breaker_threshold=3
    )

    shown = {s.name: (s.value, s.source) for s in settings}
    assert shown["timeout"] == ("2s", "config set")
    assert shown["circuit-breaker.timeout"] == ("10s", "config set")
    assert shown["circuit-breaker.threshold"] == ("3", "config set")
    assert shown["memory"] == ("64MiB", "default")
    assert {s.name: s.source for s in await client.config_get("echo")} == {
        name: source for name, (_, source) in shown.items()
    }
    events = [r.event for r in await observed.log.read()]
    assert (
        AgentReconfigured(
            agent="echo", timeout_ms=2_000, breaker_timeout_ms=10_000, breaker_threshold=3
        )
        in events
    )
    assert observed.node.actors["echo#0"]._instance is not None
    assert observed.node.actors["echo#0"]._instance.limits.timeout_ms == 2_000


async def test_config_set_refuses_bad_values_and_unknown_agents_by_name(
    observed: Observed,
) -> None:
    client = observed.client
    await client.deploy(wat("reply"), "echo")

    with pytest.raises(InvalidArgument, match=r"circuit-breaker\.threshold"):
        await client.config_set("echo", breaker_threshold=0)
    with pytest.raises(InvalidArgument, match="nothing to set"):
        await client.config_set("echo")
    with pytest.raises(NotFound, match="ghost"):
        await client.config_set("ghost", timeout_ms=1_000)
    with pytest.raises(NotFound):
        await client.config_get("ghost")


async def test_top_shows_agents_and_a_conversation_stalled_past_its_reply_by(
    observed: Observed,
) -> None:
    client = observed.client
    await client.deploy(wat("busy-reply"), "slow", config="400", timeout_ms=5_000)
    await client.deploy(wat("reply"), "echo", replicas=2)
    await client.send("echo", "request", {}, wait_ms=5_000)
    late = await client.send(  # a deadline already passed, and a 400 ms handler
        "slow", "request", {}, protocol="fipa-request", reply_by=int(time.time() * 1000) - 1
    )

    snapshot = await client.top()

    agents = {a.name: a for a in snapshot.agents}
    assert agents["echo"].running == 2 and agents["echo"].state == "running"
    assert agents["echo"].handled == 1 and agents["echo"].mailbox_size == 2048
    (stalled,) = [c for c in snapshot.conversations if c.state == "stalled"]
    assert stalled.id == late.conversation_id
    assert stalled.detail.startswith("no answer from slow")


async def test_debug_agent_shows_traps_restarts_and_figures(observed: Observed) -> None:
    client = observed.client
    await client.deploy(wat("trap"), "crashy")
    await client.send("crashy", "request", {}, wait_ms=5_000)

    found = await client.debug_agent("crashy")

    assert found.agent.traps == 1
    assert [(t.kind, t.reason) for t in found.traps] == [("trap", "unreachable")]
    assert found.conversations and found.conversations[0].state == "failed"
    assert {s.name for s in found.settings} >= {"timeout", "memory", "tools"}
    with pytest.raises(NotFound):
        await client.debug_agent("ghost")
