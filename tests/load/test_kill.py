"""Kill: rounds of SIGKILL at random moments under load (8 in CI, 20 with CAXTON_LOAD_LONG=1),
each followed by a restart and the checks: no acknowledged message missing, positions
gap-free, and once redelivery has settled, the server's state equals a fresh fold of
its log."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

import pytest

from caxton.client import CaxtonClient, CaxtonError
from caxton.domain.events import MessageSent, NodeStarted, Recorded
from caxton.domain.world import fold
from caxton.shell.api.convert import agent_info, conversation_info
from caxton.shell.client import _agent, _conversation
from caxton.shell.wasm import INLINE_TIMEOUT_MS
from tests.load.conftest import (
    LONG,
    deliveries,
    gap_free,
    long_or_short,
    sent_ids,
    start_server,
    until_settled,
)
from tests.support import wat

# A budget that CPU starvation on a shared machine cannot exhaust: these tests are about
# losses and duplicates, and a trap would dead-letter a message (agents over 20 ms run
# on the worker pool, ADR 0002)
BUDGET_MS = 1_000

pytestmark = [pytest.mark.slow, pytest.mark.load, pytest.mark.timeout(900 if LONG else 300)]

ROUNDS = int(long_or_short(20, 8))
SENDERS = 6


async def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    moments = random.Random(seed)
    data = tmp_path / "data"
    server = start_server(data)
    acknowledged: set[str] = set()
    try:
        async with CaxtonClient(server.address) as client:
            await client.deploy(wat("silent"), "sink", replicas=2, timeout_ms=BUDGET_MS)
            await client.deploy(wat("reply"), "echo", replicas=2, timeout_ms=BUDGET_MS)
        for round_ in range(ROUNDS):
            senders = [
                asyncio.create_task(_send_until_gone(server.address, f"{round_}-{n}", acknowledged))
                for n in range(SENDERS)
            ]
            await asyncio.sleep(moments.uniform(0.3, 2.0))  # a random moment under load
            server.kill()  # SIGKILL
            await asyncio.wait_for(asyncio.gather(*senders), timeout=60)
            server = start_server(data)
            async with CaxtonClient(server.address) as client:
                recorded = await until_settled(client)
                where = f"round {round_ + 1} of {ROUNDS} (seed {seed})"
                gap_free(recorded)
                ids = sent_ids(recorded)
                assert len(ids) == len(set(ids)), f"{where}: a message was accepted twice"
                missing = acknowledged - set(ids)
                assert not missing, f"{where}: {len(missing)} acknowledged messages are lost"
                deliveries(recorded).check_exactly_once()
                await _state_is_the_fold_of(client, recorded, where)
    finally:
        with contextlib.suppress(Exception):
            server.stop()
    assert len(acknowledged) > ROUNDS * SENDERS, "too little load to mean anything"


async def _send_until_gone(address: str, prefix: str, acknowledged: set[str]) -> None:
    """Sends informs to the sink and requests to the echo until the server is gone."""
    async with CaxtonClient(address, timeout=5) as client:
        for i in range(1_000_000):
            try:
                if i % 3:
                    sent = await client.send("sink", "inform", {"i": i}, message_id=f"{prefix}-{i}")
                else:
                    sent = await client.send(
                        "echo", "request", {"i": i}, protocol="fipa-request", wait_ms=2_000
                    )
            except CaxtonError:
                return
            acknowledged.add(sent.message_id)


async def _state_is_the_fold_of(client: CaxtonClient, recorded: list[Recorded], where: str) -> None:
    expected = fold(recorded)
    agents = {a.name: a for a in await client.agents()}
    # outside a cluster, the node answering runs every agent: the one that started last
    node = next(r.event.node for r in reversed(recorded) if isinstance(r.event, NodeStarted))
    assert agents == {n: _agent(agent_info(a, node=node)) for n, a in expected.agents.items()}, (
        where
    )
    # the live world (the last 20 s are within what it holds), not the log's own answer
    since = int(time.time() * 1000) - 20_000
    listed = await client.conversations(since_ms=since, limit=1_000_000)
    assert not listed.truncated, where
    conversations = {c.id: c for c in listed}
    folded = {
        i: _conversation(conversation_info(c))
        for i, c in expected.conversations.items()
        if c.last_at >= since
    }
    assert conversations.keys() == folded.keys(), where
    different = [i for i in folded if conversations[i] != folded[i]]
    assert not different, f"{where}: {conversations[different[0]]} != {folded[different[0]]}"


async def test_sigkill_never_lets_out_a_reply_the_log_does_not_hold(tmp_path: Path) -> None:
    """One commit for request → reply (ADR 0017): an inline agent handles a request before
    the request's batch commits, and the reply leaves only after that commit. Killed at
    random moments, every reply a client got is in the log as the reply to its request,
    and every request in the log is handled once (or dead-lettered), never twice."""
    seed = random.randrange(1 << 30)
    moments = random.Random(seed)
    data = tmp_path / "data"
    server = start_server(data)
    replies: dict[str, str] = {}  # reply id -> the request it answered, as clients saw it
    try:
        async with CaxtonClient(server.address) as client:
            # a budget this short runs inline: the handling joins the request's commit
            await client.deploy(wat("reply"), "echo", replicas=2, timeout_ms=INLINE_TIMEOUT_MS)
        for round_ in range(ROUNDS):
            senders = [
                asyncio.create_task(_invoke_until_gone(server.address, replies))
                for _ in range(SENDERS)
            ]
            await asyncio.sleep(moments.uniform(0.3, 2.0))
            server.kill()  # SIGKILL
            await asyncio.wait_for(asyncio.gather(*senders), timeout=60)
            server = start_server(data)
            async with CaxtonClient(server.address) as client:
                recorded = await until_settled(client)
            where = f"round {round_ + 1} of {ROUNDS} (seed {seed})"
            gap_free(recorded)
            causes = {
                r.event.message.id: r.event.cause
                for r in recorded
                if isinstance(r.event, MessageSent)
            }
            unlogged = [reply for reply in replies if reply not in causes]
            assert not unlogged, f"{where}: {len(unlogged)} replies were seen but never logged"
            wrong = [reply for reply, request in replies.items() if causes[reply] != request]
            assert not wrong, f"{where}: replies logged as answering another message: {wrong[:3]}"
            deliveries(recorded).check_exactly_once()
    finally:
        with contextlib.suppress(Exception):
            server.stop()
    assert len(replies) > ROUNDS * SENDERS, "too few replies to mean anything"


async def _invoke_until_gone(address: str, replies: dict[str, str]) -> None:
    """Sends requests and waits for each reply until the server is gone."""
    async with CaxtonClient(address, timeout=5) as client:
        while True:
            try:
                sent = await client.send(
                    "echo", "request", {"n": 1}, protocol="fipa-request", wait_ms=2_000
                )
            except CaxtonError:
                return
            if sent.reply is not None:
                replies[sent.reply.id] = sent.message_id
