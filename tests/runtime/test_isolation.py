"""A trap, an endless loop or a memory hog in one agent never disturbs another."""

from __future__ import annotations

import asyncio

from caxton.domain.events import (
    AgentFailed,
    AgentRestarting,
    AgentTrapped,
    Limits,
    MessageDeadLettered,
)
from caxton.shell.runtime.node import DeploySpec, Node
from tests.runtime.conftest import wat
from tests.runtime.test_messaging import request

ECHO_TIMEOUT_S = 2.0


async def test_failing_agents_trap_restart_and_fail_while_echo_keeps_answering(
    node: Node,
) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))
    await node.deploy(
        DeploySpec(name="looper", component=wat("loop"), limits=Limits(timeout_ms=300))
    )
    await node.deploy(
        DeploySpec(name="hog", component=wat("hog"), limits=Limits(memory_bytes=1 << 20))
    )
    await node.deploy(DeploySpec(name="trapper", component=wat("trap")))

    async def hammer(agent: str) -> None:
        # one trap per message: the first three are restarted, the fourth fails the agent
        for _ in range(4):
            await node.send(request(agent))

    async def keep_asking_echo() -> list[float]:
        waits = []
        loop = asyncio.get_running_loop()
        while not all(
            node.world.agents[name].instances[0].lifecycle == "failed"
            for name in ("looper", "hog", "trapper")
        ):
            started = loop.time()
            result = await node.send(request("echo"), wait_ms=int(ECHO_TIMEOUT_S * 1000))
            assert result.reply is not None, "echo did not answer within its timeout"
            waits.append(loop.time() - started)
        return waits

    _, _, _, waits = await asyncio.wait_for(
        asyncio.gather(hammer("looper"), hammer("hog"), hammer("trapper"), keep_asking_echo()),
        timeout=60,
    )

    assert len(waits) > 3
    assert node.world.agents["echo"].instances[0].lifecycle == "running"
    history = [r.event for r in await node.log.read()]
    traps = {(e.agent, e.kind) for e in history if isinstance(e, AgentTrapped)}
    assert traps == {("looper", "timeout"), ("hog", "memory"), ("trapper", "trap")}
    for agent in ("looper", "hog", "trapper"):
        trapped = [e for e in history if isinstance(e, AgentTrapped) and e.agent == agent]
        restarts = [e for e in history if isinstance(e, AgentRestarting) and e.agent == agent]
        failed = [e for e in history if isinstance(e, AgentFailed) and e.agent == agent]
        assert len(trapped) == 4 and all(t.reason for t in trapped)
        assert [r.attempt for r in restarts] == [1, 2, 3]
        assert len(failed) == 1


async def test_a_trapping_message_is_dead_lettered_and_its_sender_told(node: Node) -> None:
    await node.deploy(DeploySpec(name="trapper", component=wat("trap")))

    result = await node.send(request("trapper"), wait_ms=5_000)

    assert result.reply is not None
    assert result.reply.performative.value == "failure"
    assert "trap: unreachable" in result.reply.content


async def test_messages_for_a_failed_instance_are_dead_lettered_not_lost(node: Node) -> None:
    await node.deploy(DeploySpec(name="trapper", component=wat("trap")))
    results = [await node.send(request("trapper")) for _ in range(8)]
    sent = {r.message_id for r in results if r.deliveries}

    async def until_all_settled() -> None:
        settled: set[str] = set()
        async for recorded in node.log.follow():
            if isinstance(recorded.event, MessageDeadLettered):
                settled.add(recorded.event.message_id)
                if sent <= settled:
                    return

    await asyncio.wait_for(until_all_settled(), timeout=30)
    assert node.world.agents["trapper"].instances[0].lifecycle == "failed"
    late = await node.send(request("trapper"))
    assert late.dead_letters == (("trapper", "agent trapper has failed"),)
