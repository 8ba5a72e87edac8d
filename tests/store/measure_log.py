"""Measures append latency and throughput of each commit path (not a test: run it by hand).

PYTHONPATH=. .venv/bin/python tests/store/measure_log.py [postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from caxton.domain.events import AgentStopped, MessageHandled
from caxton.shell.store import EventLog, Pending
from caxton.shell.store.backend import Backend, NewRow
from caxton.shell.store.errors import translated
from caxton.shell.store.postgres import PostgresBackend
from caxton.shell.store.sqlite import SQLiteBackend

SINGLE = 3000
PRODUCERS = 100
PER_PRODUCER = 100
READ_EVENTS = 100_000


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


async def thread_hop() -> str:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1)
    samples = []
    for _ in range(SINGLE):
        t = time.perf_counter()
        await loop.run_in_executor(pool, int)
        samples.append(time.perf_counter() - t)
    pool.shutdown()
    return f"thread hop (run_in_executor, no work): p50 {_pct(samples, 0.5):.0f} µs"


async def run(name: str, backend: Backend, inline: bool) -> str:
    backend.commits_inline = inline
    log = EventLog(backend)
    samples = []
    for i in range(SINGLE):
        t = time.perf_counter()
        await log.append([Pending(AgentStopped(agent=f"a{i % 10}"), at=i)])
        samples.append(time.perf_counter() - t)
    single = f"1 producer p50 {_pct(samples, 0.5):.0f} µs p99 {_pct(samples, 0.99):.0f} µs"

    latencies: list[float] = []

    async def producer(k: int) -> None:
        for i in range(PER_PRODUCER):
            t = time.perf_counter()
            await log.append([Pending(AgentStopped(agent=f"p{k}"), at=i)])
            latencies.append(time.perf_counter() - t)

    batches = log._writer.batches
    t0 = time.perf_counter()
    await asyncio.gather(*(producer(k) for k in range(PRODUCERS)))
    elapsed = time.perf_counter() - t0
    total = PRODUCERS * PER_PRODUCER
    mean_batch = total / (log._writer.batches - batches)
    await log.close()
    return (
        f"{name:<28} {'inline' if inline else 'thread':<7} {single}; "
        f"{PRODUCERS} producers {total / elapsed:,.0f} ev/s, "
        f"p50 {_pct(latencies, 0.5):.0f} µs p99 {_pct(latencies, 0.99):.0f} µs, "
        f"mean batch {statistics.fmean([mean_batch]):.0f}"
    )


async def held_versus_pooled(tmp: str, sync: str) -> str:
    """Interleaves appends to two logs: one commits on its held connection (the log's
    path), the other through the recorder's `insert_events` (a pool checkout per batch)."""
    held = await EventLog.open(str(Path(tmp) / f"held-{sync}.db"), synchronous=sync)
    pooled = await EventLog.open(str(Path(tmp) / f"pooled-{sync}.db"), synchronous=sync)
    backend = pooled._backend
    assert isinstance(backend, SQLiteBackend)
    backend._datastore.pool.put_connection(backend._writer)  # let insert_events check it out

    def insert_events(batch: Sequence[NewRow]) -> list[int]:
        stored = [StoredEvent(s, v, topic, bytes(state)) for s, v, topic, state in batch]
        with translated(backend.where):
            return list(backend._recorder.insert_events(stored) or ())

    backend.insert = insert_events  # type: ignore[method-assign]
    samples: dict[str, list[float]] = {"held": [], "pooled": []}
    for i in range(SINGLE):
        pair = [("held", held), ("pooled", pooled)]
        for name, log in pair if i % 2 else reversed(pair):
            t = time.perf_counter()
            await log.append([Pending(AgentStopped(agent=f"a{i % 10}"), at=i)])
            samples[name].append(time.perf_counter() - t)
    backend._writer = backend._datastore.pool.get_connection(is_writer=True)
    await held.close()
    await pooled.close()
    return f"{'sqlite synchronous=' + sync:<28} inline  1 producer, interleaved: " + ", ".join(
        f"{name} p50 {_pct(s, 0.5):.0f} µs p99 {_pct(s, 0.99):.0f} µs"
        for name, s in samples.items()
    )


async def reads(name: str, store: str) -> str:
    log = await EventLog.open(store)
    for start in range(0, READ_EVENTS, 1000):
        await log.append([Pending(handled(i), at=i) for i in range(start, start + 1000)])
    t = time.perf_counter()
    everything = await log.read()
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    await log.check_integrity()
    check_s = time.perf_counter() - t
    t = time.perf_counter()
    one = await log.read(conversation_id="c7")
    conversation_ms = (time.perf_counter() - t) * 1e3
    await log.close()
    assert len(everything) == READ_EVENTS
    return (
        f"{name:<28} read all {READ_EVENTS:,}: {READ_EVENTS / read_s:,.0f} ev/s; "
        f"check_integrity {READ_EVENTS / check_s:,.0f} ev/s; "
        f"one conversation ({len(one)} of them) {conversation_ms:.1f} ms"
    )


def handled(i: int) -> MessageHandled:
    return MessageHandled(message_id=f"m{i}", conversation_id=f"c{i % 1000}", agent="a", replica=0)


async def main() -> None:
    print(await thread_hop())
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("NORMAL", "FULL"):
            for inline in (True, False):
                path = str(Path(tmp) / f"{sync}-{inline}.db")
                backend = await SQLiteBackend.open(path, synchronous=sync)
                print(await run(f"sqlite synchronous={sync}", backend, inline))
            print(await held_versus_pooled(tmp, sync))
        print(await reads("sqlite", str(Path(tmp) / "reads.db")))
    if len(sys.argv) > 1:
        url = sys.argv[1] + ("&" if "?" in sys.argv[1] else "?") + "schema=caxton_measure"
        print(await run("postgresql", await PostgresBackend.open(url), False))
        print(await reads("postgresql", url.replace("caxton_measure", "caxton_measure_reads")))


if __name__ == "__main__":
    asyncio.run(main())
