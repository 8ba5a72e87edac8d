"""The node's loop (ADR 0017): it yields between rounds, survives its observers, stops for
good after a failed commit, and never accepts a client's message id twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping, Sequence

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import Limits, MessageHandled, MessageSent, Recorded
from caxton.shell.runtime.errors import LogFailed
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import Pending, StoreError
from caxton.shell.wasm.instance import INLINE_TIMEOUT_MS
from tests.runtime.conftest import wat

INLINE = Limits(timeout_ms=INLINE_TIMEOUT_MS)

pytestmark = pytest.mark.timeout(120)  # a starved loop hangs: fail it rather than CI


def inform(to: str, id: str = "", sender: str = "") -> AclMessage:
    return AclMessage(id=id, performative=Performative.INFORM, sender=sender, receivers=(to,))


async def _sent(node: Node, message_id: str) -> list[Recorded]:
    return [
        r
        for r in await node.log.read()
        if isinstance(r.event, MessageSent) and r.event.message.id == message_id
    ]


async def test_the_loop_yields_while_agents_message_each_other_forever(node: Node) -> None:
    for side in ("a", "b"):
        await node.deploy(DeploySpec(name=side, component=wat("reply"), limits=INLINE))
    rally = asyncio.Event()
    handled = 0

    def count(recorded: Recorded) -> None:
        nonlocal handled
        handled += isinstance(recorded.event, MessageHandled)
        if handled > 2 * 256:  # more than one round's inline handlings: a rally is on
            rally.set()

    node.observers.append(count)
    await node.commit([MessageSent(message=inform("b", "serve", "a"), deliveries=("b#0",))])
    await asyncio.wait_for(rally.wait(), 60)

    # a timer and a client's send still get their turn while the rally goes on
    await asyncio.sleep(0.01)
    deployed = await node.send(inform("a", "between-rounds"))
    assert deployed.deliveries == ("a#0",)
    await node.stop_agent("a")  # ends the rally
    await node.stop_agent("b")


async def test_an_observer_that_raises_is_logged_and_the_node_goes_on(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    await node.deploy(DeploySpec(name="sink", component=wat("silent"), limits=INLINE))
    failures = 0

    def broken(recorded: Recorded) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise RuntimeError("a bug in an observer")

    node.observers.append(broken)
    await node.send(inform("sink", "first"))
    second = await node.send(inform("sink", "second"))

    assert second.deliveries == ("sink#0",)
    assert "an observer of committed events failed" in caplog.text
    assert node.log_failure is None


async def test_after_a_failed_commit_no_round_commits_and_sends_are_refused(node: Node) -> None:
    inline = Limits(timeout_ms=INLINE_TIMEOUT_MS, mailbox=5_000)
    await node.deploy(DeploySpec(name="sink", component=wat("silent"), limits=inline))
    append = node.log.append
    appends = 0

    def failing_once(
        items: Sequence[Pending],
        *,
        new_streams: Collection[str] = (),
        now: bool = False,
        fence: Mapping[int, int] = {},
    ) -> asyncio.Future[list[Recorded]]:
        nonlocal appends
        appends += 1
        if appends == 2:  # the round after the acceptance: the disk is full, once
            failed: asyncio.Future[list[Recorded]] = asyncio.get_running_loop().create_future()
            failed.set_exception(StoreError("events.db", "database or disk is full"))
            return failed
        return append(items, new_streams=new_streams, now=now, fence=fence)

    node.log.append = failing_once  # type: ignore[method-assign]
    # more than a round handles inline: what is left waits in the mailbox
    results = await node.send_many([inform("sink", f"m{i}") for i in range(700)])
    assert not [r for r in results if isinstance(r, Exception)]
    for _ in range(50):  # loop turns in which further rounds would have run
        await asyncio.sleep(0)

    assert isinstance(node.log_failure, StoreError)
    assert appends == 2, f"{appends - 2} round(s) committed after the failed one"
    with pytest.raises(LogFailed):
        await node.send(inform("sink", "after"))


async def test_a_retry_while_a_bulk_send_commits_is_not_accepted_twice(node: Node) -> None:
    await node.deploy(DeploySpec(name="sink", component=wat("silent")))
    committing = asyncio.create_task(node.send(inform("sink", "b")))
    await asyncio.sleep(0)
    many = asyncio.create_task(node.send_many([inform("sink", "a"), inform("sink", "b")]))
    await asyncio.sleep(0)
    retried = await node.send(inform("sink", "a"))  # a client retries "a" meanwhile
    first_b, (a, b) = await committing, await many

    assert a == retried and b == first_b
    assert len(await _sent(node, "a")) == 1


async def test_a_retry_after_a_cancelled_send_is_answered_not_accepted_again(node: Node) -> None:
    await node.deploy(DeploySpec(name="sink", component=wat("silent")))
    first = asyncio.create_task(node.send(inform("sink", "order-17")))
    await asyncio.sleep(0)  # queued for the next round
    first.cancel()  # the client's deadline passed: its handler is cancelled
    with contextlib.suppress(asyncio.CancelledError):
        await first

    retried = await node.send(inform("sink", "order-17"))

    assert len(await _sent(node, "order-17")) == 1
    assert retried.message_id == "order-17"
