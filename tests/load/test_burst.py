"""Burst: the send rate jumps 10× for 10 seconds. Mailboxes push back (senders are told
`Busy`, nothing is dropped silently: every acknowledged message is handled exactly once),
and the sent → handled latency is back to normal within 5 seconds after the burst."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from caxton.client import Busy, CaxtonClient, CaxtonError
from caxton.domain.events import MessageHandled, MessageSent, Recorded
from tests.load.conftest import (
    deliveries,
    gap_free,
    long_or_short,
    sent_ids,
    start_server,
    until_settled,
)
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.load]

BASE_RATE = 30  # messages/s; the slow agent handles about 200/s (a few ms each)
BURST_RATE = 10 * BASE_RATE
BEFORE_S = long_or_short(30, 6)
BURST_S = 10
AFTER_S = long_or_short(30, 10)
RECOVERY_S = 5
MAILBOX = 32


async def test_a_tenfold_burst_is_pushed_back_and_latency_recovers(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    acknowledged: set[str] = set()
    refused: list[float] = []
    failures: list[str] = []
    try:
        async with CaxtonClient(server.address, timeout=30) as client:
            # timeout > 20 ms: the agent runs on the worker pool, not on the event loop
            await client.deploy(wat("slow"), "slow", mailbox=MAILBOX, timeout_ms=1_000)

            async def send(number: int) -> None:
                try:
                    sent = await client.send("slow", "inform", {"n": number})
                except Busy:
                    refused.append(time.time())
                    return
                except CaxtonError as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    return
                acknowledged.add(sent.message_id)

            started = time.time()
            burst_starts, burst_ends = started + BEFORE_S, started + BEFORE_S + BURST_S
            tasks: set[asyncio.Task[None]] = set()
            count, due = 0, 0.0
            while (now := time.time()) < burst_ends + AFTER_S:
                rate = BURST_RATE if burst_starts <= now < burst_ends else BASE_RATE
                due += rate * 0.01
                while count < due:  # pacing a rate, not waiting for an event
                    count += 1
                    task = asyncio.create_task(send(count))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await asyncio.sleep(0.01)
            await asyncio.gather(*tasks)
            recorded = await until_settled(client)

        assert not failures, failures[:3]
        assert refused, "the burst never filled the mailbox: no backpressure was exercised"
        assert all(burst_starts <= t <= burst_ends + RECOVERY_S for t in refused), (
            "senders were refused outside the burst"
        )
        gap_free(recorded)
        assert not acknowledged - set(sent_ids(recorded)), "an acknowledged send is not in the log"
        found = deliveries(recorded)
        found.check_exactly_once()
        assert not found.dead_letters, found.dead_letters[:3]

        latency = _latencies(recorded)  # (sent at, ms from sent to handled), server clock
        before = [ms for at, ms in latency if at < burst_starts * 1000]
        during = [ms for at, ms in latency if burst_starts * 1000 <= at < burst_ends * 1000]
        after = [ms for at, ms in latency if at >= (burst_ends + RECOVERY_S) * 1000]
        assert before and during and after
        assert p99(during) > p99(before), "the burst did not queue anything"
        # recovered: well below the burst's, and near the baseline (with room for a
        # shared machine whose other work can starve the server for a while)
        figures = (p99(before), p99(during), p99(after))
        assert p99(after) < p99(during) / 2, figures
        assert p99(after) <= 3 * p99(before) + 250, figures
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def _latencies(recorded: list[Recorded]) -> list[tuple[int, int]]:
    sent_at = {
        r.event.message.id: r.at
        for r in recorded
        if isinstance(r.event, MessageSent) and r.event.message.receivers == ("slow",)
    }
    return [
        (sent_at[r.event.message_id], r.at - sent_at[r.event.message_id])
        for r in recorded
        if isinstance(r.event, MessageHandled) and r.event.message_id in sent_at
    ]


def p99(values: list[int]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
