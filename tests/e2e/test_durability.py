"""A server killed with SIGKILL in the middle of a stream of sends loses nothing it acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import pytest

from caxton.client import CaxtonClient, CaxtonError
from caxton.domain import digests
from caxton.domain.events import MessageHandled, MessageSent, NodeStarted, Recorded
from caxton.domain.world import fold
from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component

pytestmark = pytest.mark.slow

SENDERS = 8
KILL_AFTER_ACKS = 400


async def test_acknowledged_sends_survive_sigkill(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start()
    component = write_component(tmp_path, "silent")
    caxton(
        "agent",
        "deploy",
        str(component),
        "--name",
        "sink",
        "--replicas",
        "2",
        server=server.address,
    )
    acked: list[str] = []
    enough = asyncio.Event()

    async def sender(number: int) -> None:
        async with CaxtonClient(server.address, timeout=5) as client:
            for i in range(100_000):
                message_id = f"m-{number}-{i}"
                try:
                    await client.send("sink", "inform", {"i": i}, message_id=message_id)
                except CaxtonError:
                    return  # the server is gone
                acked.append(message_id)
                if len(acked) >= KILL_AFTER_ACKS:
                    enough.set()

    senders = [asyncio.create_task(sender(n)) for n in range(SENDERS)]
    await asyncio.wait_for(enough.wait(), timeout=120)
    server.kill()  # SIGKILL, with sends in flight
    await asyncio.wait_for(asyncio.gather(*senders), timeout=60)
    acknowledged = list(acked)

    restarted = ServerProcess(server.data_dir, f"127.0.0.1:{free_port()}").start()
    try:
        async with CaxtonClient(restarted.address) as client:
            history = [r async for r in client.events()]
            before_kill = _before_second_start(history)

            assert [r.position for r in history] == list(range(1, len(history) + 1))
            sent_ids = [r.event.message.id for r in history if isinstance(r.event, MessageSent)]
            assert len(sent_ids) == len(set(sent_ids)), "a message was accepted twice"
            missing = set(acknowledged) - set(sent_ids)
            assert not missing, f"{len(missing)} acknowledged sends are not in the log"

            # the state the restarted server folded equals the fold of what was committed:
            # the same agents and conversations (handlings redone since may only add to it)
            expected = fold(before_kill)
            agents = {a.name: a for a in await client.agents()}
            assert agents.keys() == expected.agents.keys()
            for name, state in expected.agents.items():
                assert agents[name].component_digest == digests.shown(state.component)
                assert agents[name].status == state.status
                assert agents[name].replicas == len(state.instances)
            # the live world (the last 20 s are within what it holds), not the log's answer
            since = int(time.time() * 1000) - 20_000
            listed = await client.conversations(since_ms=since, limit=1_000_000)
            assert not listed.truncated
            served = {c.id: c for c in listed}
            recent = {i: c for i, c in expected.conversations.items() if c.last_at >= since}
            assert served.keys() == recent.keys()
            for conversation_id, conversation in recent.items():
                assert served[conversation_id].message_count == conversation.message_count
                assert set(served[conversation_id].participants) == conversation.participants
            # and every accepted message is handled, redelivered if the kill cut it off ...
            await _until_all_handled(client, set(sent_ids))
            # ... exactly once, now that all is settled
            settled = [r.event async for r in client.events()]
            handled = Counter(e.message_id for e in settled if isinstance(e, MessageHandled))
            assert set(handled) == set(sent_ids)
            assert set(handled.values()) == {1}, "a message was handled twice"

        one = acknowledged[0]
        conversation = next(
            r.event.message.conversation_id
            for r in history
            if isinstance(r.event, MessageSent) and r.event.message.id == one
        )
        trace = caxton("trace", "--conversation-id", conversation, server=restarted.address)
        assert 'message="inform" status="sent"' in trace.stdout
    finally:
        with contextlib.suppress(Exception):
            restarted.stop()


def _before_second_start(history: list[Recorded]) -> list[Recorded]:
    starts = [i for i, r in enumerate(history) if isinstance(r.event, NodeStarted)]
    assert len(starts) == 2, "expected one start before and one after the kill"
    return history[: starts[1]]


async def _until_all_handled(client: CaxtonClient, sent: set[str]) -> None:
    handled: dict[str, int] = {}

    async def watch() -> None:
        async for recorded in client.events(follow=True):
            if isinstance(recorded.event, MessageHandled):
                handled[recorded.event.message_id] = handled.get(recorded.event.message_id, 0) + 1
                if sent <= handled.keys():
                    return

    await asyncio.wait_for(watch(), timeout=60)
