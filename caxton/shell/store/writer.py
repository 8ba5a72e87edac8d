"""Group commit: every append made in one loop iteration goes into one transaction.

The first append of an iteration schedules a flush with `loop.call_soon`. The flush
gives each event the next version of its stream and inserts the whole batch through
the backend, then resolves the callers' futures in order. A backend that commits
inline does so on the loop thread (a WAL commit costs less than a thread hop); the
others commit in one writer thread, and appends made meanwhile wait for the next batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from eventsourcing.persistence import StoredEvent

from caxton.domain.events import Recorded
from caxton.domain.frozen import positional
from caxton.shell.store.backend import Backend
from caxton.shell.store.envelope import Pending, Prepared, prepare
from caxton.shell.store.errors import AppendRejected, StoreError, StoreUnavailable

Waiter = asyncio.Future[list[Recorded]]

# Recorded(...) without its frozen __init__ (0.5 µs against 1.3): one per committed event
_recorded = positional(Recorded)


@dataclass(slots=True)
class _Outcome:
    """What one batch came to: its positions, or the error and the versions reloaded."""

    positions: list[int] = field(default_factory=list)
    error: StoreError | None = None
    versions: dict[str, int] | None = None
    duration_ns: int = 0


class GroupCommit:
    """The log's single writer; it alone knows each stream's next version."""

    def __init__(
        self,
        backend: Backend,
        versions: dict[str, int],
        *,
        on_commit: Callable[[], None],
    ) -> None:
        self._backend = backend
        self._versions = versions
        self._on_commit = on_commit
        self.on_batch: Callable[[int, int], None] | None = None
        """Called after each committed batch with its size and its commit time in ns."""
        self._loop = asyncio.get_running_loop()
        self._queue: list[tuple[list[Prepared], Waiter]] = []
        self._busy = False  # a flush is scheduled or a batch is in flight
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = False
        self._thread = (
            None
            if backend.commits_inline
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="caxton-log-writer")
        )
        self.batches = 0
        """How many transactions were committed (for metrics and tests)."""

    def append(self, items: Sequence[Pending]) -> Waiter:
        """Queues `items`; the future gets their `Recorded`s once they are committed."""
        waiter: Waiter = self._loop.create_future()
        if self._closed:
            waiter.set_exception(StoreUnavailable(self._backend.where, "the event log is closed"))
            return waiter
        try:
            prepared = [prepare(p) for p in items]
        except (TypeError, ValueError) as e:  # orjson refuses what is not JSON-able
            waiter.set_exception(AppendRejected(self._backend.where, f"cannot encode: {e}"))
            return waiter
        if not prepared:
            waiter.set_result([])
            return waiter
        self._queue.append((prepared, waiter))
        if not self._busy:
            self._busy = True
            self._drained.clear()
            self._loop.call_soon(self._flush)
        return waiter

    async def close(self) -> None:
        """Refuses new appends, waits for queued ones to commit, stops the thread."""
        self._closed = True
        await self._drained.wait()
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        stored, versions = self._number(batch)
        if self._thread is None:
            self._landed(batch, versions, self._commit(stored))
            return
        running = self._loop.run_in_executor(self._thread, self._commit, stored)
        running.add_done_callback(lambda done: self._landed(batch, versions, done.result()))

    def _number(
        self, batch: list[tuple[list[Prepared], Waiter]]
    ) -> tuple[list[StoredEvent], list[int]]:
        """Gives each event the next version of its stream (kept only if the batch commits)."""
        next_versions: dict[str, int] = {}
        stored: list[StoredEvent] = []
        versions: list[int] = []
        for prepared, _ in batch:
            for p in prepared:
                version = next_versions.get(p.stream, self._versions.get(p.stream, 0)) + 1
                next_versions[p.stream] = version
                versions.append(version)
                stored.append(StoredEvent(p.stream, version, p.topic, p.state))
        return stored, versions

    def _commit(self, stored: list[StoredEvent]) -> _Outcome:
        """One transaction; on failure, the versions are reloaded (another writer?)."""
        started = time.perf_counter_ns()
        try:
            positions = self._backend.insert(stored)
        except Exception as e:  # every caller of the batch must hear of it, bug or not
            error = e if isinstance(e, StoreError) else StoreError(self._backend.where, repr(e))
            if error is not e:
                error.__cause__ = e
            try:
                return _Outcome(error=error, versions=self._backend.stream_versions())
            except Exception:
                return _Outcome(error=error)
        if len(positions) != len(stored):
            reason = f"the recorder gave {len(positions)} positions for {len(stored)} events"
            return _Outcome(error=StoreError(self._backend.where, reason))
        return _Outcome(positions=positions, duration_ns=time.perf_counter_ns() - started)

    def _landed(
        self, batch: list[tuple[list[Prepared], Waiter]], versions: list[int], outcome: _Outcome
    ) -> None:
        if outcome.error is not None:
            if outcome.versions is not None:
                self._versions = outcome.versions
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(outcome.error)
        else:
            self.batches += 1
            self._resolve(batch, versions, outcome.positions)
            if self.on_batch is not None:
                self.on_batch(len(outcome.positions), outcome.duration_ns)
            self._on_commit()
        if self._queue:
            self._loop.call_soon(self._flush)
        else:
            self._busy = False
            self._drained.set()

    def _resolve(
        self,
        batch: list[tuple[list[Prepared], Waiter]],
        versions: list[int],
        positions: list[int],
    ) -> None:
        i = 0
        for prepared, waiter in batch:
            records: list[Recorded] = []
            for p in prepared:
                self._versions[p.stream] = versions[i]
                pending = p.pending
                records.append(
                    _recorded(
                        positions[i],
                        p.stream,
                        versions[i],
                        pending.at,
                        pending.event,
                        pending.traceparent,
                    )
                )
                i += 1
            if not waiter.done():  # a caller that stopped waiting still had its events written
                waiter.set_result(records)
