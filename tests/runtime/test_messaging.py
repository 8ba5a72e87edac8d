"""Messages through a real node: a real SQLite log, real wasmtime, WAT agents."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.errors import InvalidMessage
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    Limits,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    Recorded,
)
from caxton.domain.ids import sent_message_id
from caxton.shell.runtime.clients import RETRY_WINDOW_MS
from caxton.shell.runtime.errors import MailboxFull
from caxton.shell.runtime.node import DeploySpec, Node, SendResult
from caxton.shell.store import EventLog, Pending
from caxton.shell.wasm import WasmHost
from caxton.shell.wasm.instance import INLINE_TIMEOUT_MS
from tests import samples
from tests.runtime.conftest import wat
from tests.support import SteppedClock


def request(*receivers: str, content: str = "{}", id: str = "", **fields: str) -> AclMessage:
    return AclMessage(
        id=id,
        performative=Performative.REQUEST,
        sender="",
        receivers=receivers,
        content=content,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_request_gets_its_reply_and_every_step_is_in_the_log(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))

    result = await node.send(request("echo", protocol="fipa-request"), wait_ms=5_000)

    assert result.reply is not None
    assert result.reply.performative is Performative.INFORM
    assert result.reply.sender == "echo"
    assert result.reply.in_reply_to == result.message_id
    assert result.reply.conversation_id == result.conversation_id
    assert result.reply.protocol == "fipa-request"
    history = await node.log.read(conversation_id=result.conversation_id)
    kinds = [type(r.event) for r in history]
    assert kinds == [MessageSent, MessageHandled, MessageSent]  # the client's reply: no handling
    assert node.world.conversations[result.conversation_id].outcome == "done"


async def test_an_unknown_receiver_is_dead_lettered_and_the_sender_gets_failure(
    node: Node,
) -> None:
    result = await node.send(request("nobody"), wait_ms=5_000)

    assert result.dead_letters == (("nobody", "no agent named nobody"),)
    assert result.reply is not None
    assert result.reply.performative is Performative.FAILURE
    assert result.reply.sender == "caxton"
    assert "no agent named nobody" in json.loads(result.reply.content)["error"]
    history = await node.log.read(conversation_id=result.conversation_id)
    assert any(isinstance(r.event, MessageDeadLettered) for r in history)


async def test_replicas_share_the_load_round_robin(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply"), replicas=3))

    targets = [(await node.send(request("echo"))).deliveries for _ in range(6)]

    assert targets == [("echo#0",), ("echo#1",), ("echo#2",)] * 2


async def test_a_cfp_to_a_capability_goes_to_every_agent_that_declares_it(node: Node) -> None:
    for name in ("bidder-a", "bidder-b", "bidder-c"):
        await node.deploy(DeploySpec(name=name, component=wat("reply"), capabilities=("bidding",)))
    await node.deploy(DeploySpec(name="other", component=wat("reply")))
    cfp = AclMessage(
        id="",
        performative=Performative.CFP,
        sender="",
        receivers=("capability:bidding",),
        protocol="fipa-contract-net",
    )

    result = await node.send(cfp)

    assert sorted(result.deliveries) == ["bidder-a#0", "bidder-b#0", "bidder-c#0"]


async def test_sending_the_same_message_id_twice_is_accepted_once(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("silent")))
    message = AclMessage(
        id="order-17", performative=Performative.INFORM, sender="", receivers=("echo",)
    )

    first = await node.send(message)
    second = await node.send(message)

    assert first == second
    sent = [r for r in await node.log.read() if isinstance(r.event, MessageSent)]
    assert [r.event.message.id for r in sent] == ["order-17"]


async def test_the_log_starts_with_the_node_and_records_each_instance_start(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("silent"), replicas=2))

    history = await node.log.read()

    assert isinstance(history[0].event, NodeStarted)
    started = [r.event for r in history if isinstance(r.event, AgentStarted)]
    # the replicas start concurrently (on worker threads): their order in the log may vary
    assert sorted((e.agent, e.replica, e.incarnation) for e in started) == [
        ("echo", 0, 1),
        ("echo", 1, 1),
    ]


async def test_now_and_random_are_journaled_with_the_handling(node: Node) -> None:
    await node.deploy(DeploySpec(name="clock", component=wat("clock")))

    result = await node.send(request("clock"))
    handled = None
    async for recorded in node.log.follow(conversation_id=result.conversation_id):
        if isinstance(recorded.event, MessageHandled):
            handled = recorded.event
            break

    assert handled is not None
    # the line it logged is journaled too, in order (a note: replay feeds back answers only)
    assert [call.kind for call in handled.journal] == ["now", "random", "log"]


async def test_two_deploys_of_one_name_at_once_deploy_it_once(node: Node) -> None:
    spec = DeploySpec(name="echo", component=wat("reply"))

    results = await asyncio.gather(node.deploy(spec), node.deploy(spec), return_exceptions=True)

    assert sorted(type(r).__name__ for r in results) == ["AgentExists", "NoneType"]
    history = [r.event for r in await node.log.read()]
    assert sum(isinstance(e, AgentDeployed) for e in history) == 1
    assert list(node.actors) == ["echo#0"]


async def test_two_sends_of_one_id_at_once_are_accepted_once(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("silent")))
    message = AclMessage(
        id="once", performative=Performative.INFORM, sender="", receivers=("echo",)
    )

    first, second = await asyncio.gather(node.send(message), node.send(message))

    assert first == second
    sent = [r.event for r in await node.log.read() if isinstance(r.event, MessageSent)]
    assert [e.message.id for e in sent] == ["once"]


async def test_a_retry_is_answered_within_the_window_and_across_a_restart(
    tmp_path: Path,
) -> None:
    clock = SteppedClock()
    message = AclMessage(
        id="order-18", performative=Performative.INFORM, sender="", receivers=("echo",)
    )
    async with running_node(tmp_path, clock) as node:
        await node.deploy(DeploySpec(name="echo", component=wat("silent")))
        first = await node.send(message)
    clock.ms += RETRY_WINDOW_MS - 1_000
    async with running_node(tmp_path, clock) as node:
        again = await node.send(message)  # the restarted node knows it from the log
        clock.ms += 2_000
        late = await node.send(message)  # past the window: a new message
        log = await node.log.read()

    assert again == first
    assert late.message_id == "order-18" and late.conversation_id != first.conversation_id
    sent = [r.event.message.id for r in log if isinstance(r.event, MessageSent)]
    assert sent == ["order-18", "order-18"]


@contextlib.asynccontextmanager
async def running_node(tmp_path: Path, clock: SteppedClock) -> AsyncIterator[Node]:
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=clock, node_id="node-test")
    await node.start()
    try:
        yield node
    finally:
        await node.shutdown()
        await log.close()
        host.close()


async def test_api_callers_cannot_send_as_an_agent_or_the_platform(node: Node) -> None:
    for sender in ("echo", "caxton"):
        message = AclMessage(
            id="", performative=Performative.INFORM, sender=sender, receivers=("echo",)
        )
        with pytest.raises(InvalidMessage, match="callers of the API send as client:<id>"):
            await node.send(message)


async def test_requests_sent_together_commit_with_their_handlings_each_with_its_trace(
    node: Node,
) -> None:
    # inline (ADR 0002, ADR 0017): the node calls the idle agent before the commit
    inline = Limits(timeout_ms=INLINE_TIMEOUT_MS)
    await node.deploy(DeploySpec(name="echo", component=wat("reply"), limits=inline))
    appends: list[list[str]] = []  # the event types of each append, in order
    append = node.log.append

    def counted(
        items: Sequence[Pending],
        *,
        new_streams: Collection[str] = (),
        now: bool = False,
        fence: Mapping[int, int] = {},
    ) -> asyncio.Future[list[Recorded]]:
        appends.append([type(p.event).__name__ for p in items])
        return append(items, new_streams=new_streams, now=now, fence=fence)

    node.log.append = counted  # type: ignore[method-assign]
    handled: list[MessageHandled] = []
    contexts: dict[str, str] = {}
    replies = asyncio.Event()

    def seen(recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, MessageHandled):
            handled.append(event)
            contexts[event.message_id] = recorded.traceparent
        if isinstance(event, MessageSent) and event.cause and len(handled) == 5:
            replies.set()

    node.observers.append(seen)
    # accepted in one round: each request, its handling and its reply in one commit
    sent = await asyncio.gather(*(node.send(request("echo")) for _ in range(5)))
    await asyncio.wait_for(replies.wait(), timeout=10)
    assert appends == [["MessageSent"] * 5 + ["MessageHandled", "MessageSent"] * 5]
    assert [h.message_id for h in handled] == [s.message_id for s in sent]
    messages = {m.id: m for m in await _accepted(node, [s.message_id for s in sent])}
    assert contexts == {i: messages[i].traceparent for i in contexts}
    assert len(set(contexts.values())) == 5


async def _accepted(node: Node, ids: list[str]) -> list[AclMessage]:
    found = [r.event.message for r in await node.log.read() if isinstance(r.event, MessageSent)]
    return [m for m in found if m.id in ids]


async def test_the_start_up_fold_leaves_the_garbage_collector_as_it_found_it(
    tmp_path: Path,
) -> None:
    clock = SteppedClock()
    async with running_node(tmp_path, clock) as node:
        await node.deploy(DeploySpec(name="echo", component=wat("silent")))
    assert gc.isenabled()
    gc.disable()
    try:
        async with running_node(tmp_path, clock):
            assert not gc.isenabled()  # paused around the fold only if it was running
    finally:
        gc.enable()
    async with running_node(tmp_path, clock):
        assert gc.isenabled()


async def test_a_message_committed_after_its_sender_stopped_waiting_is_still_delivered(
    node: Node,
) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))
    handled = asyncio.Event()
    node.observers.append(lambda r: handled.set() if isinstance(r.event, MessageHandled) else None)
    appending = node.commit([MessageSent(message=samples.message("c-1"), deliveries=("echo#0",))])
    appending.cancel()  # the appender gave up: the events are committed all the same
    await asyncio.wait_for(handled.wait(), 5)

    assert "c-1" in node.world.conversations
    assert [type(r.event) for r in await node.log.read(conversation_id="c-1")] == [
        MessageSent,
        MessageHandled,
        MessageSent,
    ]


async def test_the_world_holds_a_commit_before_its_appender_resumes(node: Node) -> None:
    position = node.world.position

    await node.commit([NodeStarted(node="n2", address="", version="0")])

    assert node.world.position == position + 1


async def test_a_conversation_the_node_starts_costs_the_log_no_version_lookup(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))
    versions = node.log._writer._versions
    asked: list[str] = []
    lookup = versions._lookup

    def recording(streams: Sequence[str]) -> dict[str, int]:
        asked.extend(streams)
        return lookup(streams)

    monkeypatch.setattr(versions, "_lookup", recording)
    started = await node.send(request("echo"), wait_ms=5_000)
    named = await node.send(request("echo", conversation_id="mine"), wait_ms=5_000)

    assert started.reply is not None and named.reply is not None
    assert f"conversation:{started.conversation_id}" not in asked
    assert "conversation:mine" in asked  # a caller's id may name a stream the log holds


async def test_a_client_cannot_send_with_the_id_an_agents_reply_will_get(node: Node) -> None:
    await node.deploy(DeploySpec(name="echo", component=wat("reply")))
    first = await node.send(request("echo", id="order-1"), wait_ms=5_000)
    assert first.reply is not None
    # the id echo's reply to the next request will get, and the one it got for this one
    for taken in (sent_message_id("order-2", "echo", 0), first.reply.id):
        with pytest.raises(InvalidMessage) as refused:
            await node.send(request("echo", id=taken))
        assert refused.value.field == "id"
    await node.send(request("echo", id="order-2"), wait_ms=5_000)

    sent = [r.event.message.id for r in await node.log.read() if isinstance(r.event, MessageSent)]
    assert len(sent) == len(set(sent)) == 4  # two requests, two replies, each id once


async def test_a_bulk_send_is_one_batch_and_refuses_only_the_messages_at_fault(
    node: Node,
) -> None:
    inline = Limits(timeout_ms=INLINE_TIMEOUT_MS, mailbox=2)
    await node.deploy(DeploySpec(name="echo", component=wat("reply"), limits=inline))
    await node.deploy(DeploySpec(name="slow", component=wat("silent"), limits=Limits(mailbox=1)))
    appends: list[int] = []
    append = node.log.append

    def counted(
        items: Sequence[Pending],
        *,
        new_streams: Collection[str] = (),
        now: bool = False,
        fence: Mapping[int, int] = {},
    ) -> asyncio.Future[list[Recorded]]:
        appends.append(len(items))
        return append(items, new_streams=new_streams, now=now, fence=fence)

    node.log.append = counted  # type: ignore[method-assign]
    earlier = await node.send(request("echo", id="retried"))
    appends.clear()
    stolen = AclMessage(id="", performative=Performative.INFORM, sender="echo", receivers=("echo",))
    results = await node.send_many(
        [
            request("echo", id="one"),
            stolen,  # an agent's name cannot be borrowed: refused, alone
            request("echo", id="retried"),  # accepted before: answered, not accepted again
            request("echo", id="one"),  # twice in one batch: accepted once
            request("slow", id="fits"),
            request("slow", id="too-many"),  # the mailbox holds one waiting message
        ]
    )

    one, refused, retried, again, fits, too_many = results
    assert isinstance(one, SendResult) and one.deliveries == ("echo#0",)
    assert isinstance(refused, InvalidMessage)
    assert retried == earlier
    assert again == one
    assert isinstance(fits, SendResult)
    assert isinstance(too_many, MailboxFull)
    assert len(appends) == 1  # the accepted messages and the echo's handlings: one commit
    accepted = [
        r.event.message.id for r in await node.log.read() if isinstance(r.event, MessageSent)
    ]
    assert accepted.count("one") == 1 and "too-many" not in accepted
