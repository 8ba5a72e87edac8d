"""A node restarted on its log: agents come back and accepted messages are delivered again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import Limits, MessageDeadLettered, MessageHandled, MessageSent
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog, Pending
from caxton.shell.wasm import WasmHost
from tests.runtime.conftest import wat


async def open_node(path: Path) -> Node:
    log = await EventLog.open(str(path / "events.db"))
    node = Node(log=log, host=WasmHost(path / "components"), clock=SystemClock(), node_id="n1")
    await node.start()
    return node


async def close_node(node: Node) -> None:
    await node.shutdown()
    await node.log.close()
    node.host.close()


async def test_more_pending_messages_than_the_mailbox_holds_are_all_redelivered(
    tmp_path: Path,
) -> None:
    node = await open_node(tmp_path)
    await node.deploy(DeploySpec(name="sink", component=wat("silent"), limits=Limits(mailbox=2)))
    await close_node(node)
    # ten messages accepted for sink#0 while no node ran them (as if it died right after)
    log = await EventLog.open(str(tmp_path / "events.db"))
    at = SystemClock().now_ms()
    await log.append(
        [
            Pending(
                event=MessageSent(
                    message=AclMessage(
                        id=f"m{i}",
                        performative=Performative.INFORM,
                        sender="client:test",
                        receivers=("sink",),
                        conversation_id="backlog",
                    ),
                    deliveries=("sink#0",),
                ),
                at=at,
            )
            for i in range(10)
        ]
    )
    await log.close()

    node = await open_node(tmp_path)
    try:
        handled: set[str] = set()

        async def until_all_handled() -> None:
            async for recorded in node.log.follow(conversation_id="backlog"):
                assert not isinstance(recorded.event, MessageDeadLettered), recorded.event
                if isinstance(recorded.event, MessageHandled):
                    handled.add(recorded.event.message_id)
                    if len(handled) == 10:
                        return

        await asyncio.wait_for(until_all_handled(), timeout=30)
        assert handled == {f"m{i}" for i in range(10)}
    finally:
        await close_node(node)
