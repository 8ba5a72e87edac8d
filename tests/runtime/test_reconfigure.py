"""`config set` on a live node: recorded as an event, applied without restarting anything."""

from __future__ import annotations

import asyncio

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import AgentReconfigured, AgentStarted, AgentTrapped, Limits
from caxton.shell.runtime.errors import AgentNotFound, MailboxFull
from caxton.shell.runtime.node import DeploySpec, Node
from tests.runtime.conftest import wat


def request(receiver: str) -> AclMessage:
    return AclMessage(
        id="", performative=Performative.REQUEST, sender="", receivers=(receiver,), content="{}"
    )


async def started_events(node: Node) -> int:
    return sum(isinstance(r.event, AgentStarted) for r in await node.log.read())


async def test_a_longer_timeout_lets_a_slow_handler_finish_without_a_restart(node: Node) -> None:
    await node.deploy(
        DeploySpec(
            name="slow", component=wat("busy-reply"), config="150", limits=Limits(timeout_ms=50)
        )
    )
    first = await node.send(request("slow"), wait_ms=5_000)
    assert first.reply is not None and first.reply.performative is Performative.FAILURE
    await _running(node, "slow")
    starts = await started_events(node)

    await node.reconfigure(AgentReconfigured(agent="slow", timeout_ms=2_000))
    second = await node.send(request("slow"), wait_ms=5_000)

    assert second.reply is not None and second.reply.performative is Performative.INFORM
    assert await started_events(node) == starts  # the running instance took it: no restart
    history = [r.event for r in await node.log.read()]
    assert AgentReconfigured(agent="slow", timeout_ms=2_000) in history
    assert sum(isinstance(e, AgentTrapped) for e in history) == 1


async def test_a_bigger_mailbox_takes_messages_the_old_one_refused(node: Node) -> None:
    await node.deploy(
        DeploySpec(
            name="slow",
            component=wat("busy-reply"),
            config="300",
            limits=Limits(timeout_ms=5_000, mailbox=1),
        )
    )
    with pytest.raises(MailboxFull):  # one being handled (perhaps), one waiting, no room
        for _ in range(3):
            await node.send(request("slow"))

    agent = await node.reconfigure(AgentReconfigured(agent="slow", mailbox=5))
    await node.send(request("slow"))

    assert agent.limits.mailbox == 5
    assert node.actors["slow#0"].mailbox.maxsize == 5


async def test_bad_or_misaddressed_changes_are_refused_and_nothing_is_recorded(
    node: Node,
) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))
    before = len(await node.log.read())

    with pytest.raises(InvalidAgentSpec):
        await node.reconfigure(AgentReconfigured(agent="echo", timeout_ms=0))
    with pytest.raises(AgentNotFound):
        await node.reconfigure(AgentReconfigured(agent="ghost", timeout_ms=1_000))

    assert len(await node.log.read()) == before


async def _running(node: Node, name: str) -> None:
    """Waits (on the log, not the clock) until every replica runs again."""
    async for recorded in node.log.follow(from_position=1):
        if isinstance(recorded.event, AgentStarted) and recorded.event.incarnation > 1:
            break
    await asyncio.sleep(0)
    assert all(i.lifecycle == "running" for i in node.world.agents[name].instances)
