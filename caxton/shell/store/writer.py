"""Group commit: every append made in one loop iteration goes into one transaction.

The first append of an iteration schedules a flush with `loop.call_soon`. The flush
gives each event the next version of its stream and inserts the whole batch through
the backend, then resolves the callers' futures in order. A backend that commits
inline does so on the loop thread (a WAL commit costs less than a thread hop); the
others number and commit in one writer thread, and appends made meanwhile wait for the
next batch. One batch at a time: each is numbered after the previous one committed.

On a shared log (a cluster's) the database numbers each batch, under its table lock,
since other nodes write the same streams. An append there may carry a guard, a lease
fence or a claim, that the database checks in the same transaction; one that fails
must not fail the appends queued beside it, so a flush commits each run of appends
with the same guard as a transaction of its own, in the order they were queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from caxton.domain.events import Recorded
from caxton.domain.frozen import positional
from caxton.shell.store.backend import Backend, Claim, Guard, NewRow, SharedBackend
from caxton.shell.store.envelope import Pending, Prepared, prepare
from caxton.shell.store.errors import (
    AppendRejected,
    ClaimRefused,
    LeaseLost,
    StoreError,
    StoreUnavailable,
)
from caxton.shell.store.versions import RecentVersions

Waiter = asyncio.Future[list[Recorded]]
Queued = tuple[list[Prepared], Waiter, Guard | None]

logger = logging.getLogger("caxton.store")

# Recorded(...) without its frozen __init__ (0.5 µs against 1.3): one per committed event
_recorded = positional(Recorded)


@dataclass(slots=True)
class _Outcome:
    """What one batch came to: its events' versions and positions, or the error."""

    versions: list[int] = field(default_factory=list)
    positions: Sequence[int] = ()
    error: StoreError | None = None
    duration_ns: int = 0


class GroupCommit:
    """The log's single writer; it alone numbers each stream's events."""

    def __init__(
        self,
        backend: Backend,
        *,
        on_commit: Callable[[], None],
        shared: SharedBackend | None = None,
    ) -> None:
        """`shared`: the same backend, when it is a shared log's (numbered by the
        database, guards allowed)."""
        self._backend = backend
        self._shared = shared
        self.origin = ""
        """The node of a cluster that writes through this log: stamped on every event."""
        # the last versions of recently written streams (the others are looked up)
        self._versions = RecentVersions(backend.last_versions)
        self._on_commit = on_commit
        self.on_batch: Callable[[int, int], None] | None = None
        """Called after each committed batch with its size and its commit time in ns."""
        self._loop = asyncio.get_running_loop()
        self._queue: list[Queued] = []
        self._new: set[str] = set()  # streams the queued appends say are new
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
        self.fault: StoreError | None = None
        """Why the last batch failed; None once one commits again (or none failed)."""

    def append(
        self,
        items: Sequence[Pending],
        new_streams: Collection[str] = (),
        *,
        now: bool = False,
        guard: Guard | None = None,
    ) -> Waiter:
        """Queues `items`; the future gets their `Recorded`s once they are committed.

        `new_streams` are streams the caller knows the log does not hold (named by an id
        it just made at random): they start at version 1 without a lookup. A wrong claim
        fails the batch (the key is taken), it never overwrites. `now`: the caller's batch
        is the whole transaction (the node's round): a backend that commits inline does
        so before returning, when no other batch is in flight, and the future is done.
        `guard` (a shared log's only): what the database checks before writing these."""
        waiter: Waiter = self._loop.create_future()
        if self._closed:
            waiter.set_exception(StoreUnavailable(self._backend.where, "the event log is closed"))
            return waiter
        try:
            prepared = [prepare(p, self.origin) for p in items]
        except (TypeError, ValueError) as e:  # msgspec refuses what is not JSON-able
            waiter.set_exception(AppendRejected(self._backend.where, f"cannot encode: {e}"))
            return waiter
        if not prepared:
            waiter.set_result([])
            return waiter
        self._queue.append((prepared, waiter, guard))
        if new_streams:
            self._new.update(new_streams)
        if now and self._thread is None and not self._busy:
            self._busy = True
            self._drained.clear()
            self._flush()
            return waiter
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
        new, self._new = self._new, set()
        if self._shared is not None:
            runs = _runs(batch)
            committing = self._loop.run_in_executor(self._thread, self._commit_runs, runs)
            committing.add_done_callback(lambda done: self._landed_runs(runs, done.result()))
            return
        prepared = [p for items, _, _ in batch for p in items]
        if self._thread is None:
            self._landed(batch, self._commit(prepared, new))
            return
        running = self._loop.run_in_executor(self._thread, self._commit, prepared, new)
        running.add_done_callback(lambda done: self._landed(batch, done.result()))

    def _commit(self, prepared: list[Prepared], new: set[str]) -> _Outcome:
        """Numbers the batch and commits it in one transaction (on the loop for an inline
        backend, in the writer thread otherwise: the numbering goes where the commit goes).
        On failure the kept versions are forgotten, and asked of the log again (another
        writer?)."""
        try:
            rows, versions, last = self._number(prepared, new)
            started = time.perf_counter_ns()
            positions = self._backend.insert(rows)
        except Exception as e:  # every caller of the batch must hear of it, bug or not
            self._versions.forget()
            return _Outcome(error=_store_error(e, self._backend.where))
        if len(positions) != len(rows):
            self._versions.forget()
            reason = f"the recorder gave {len(positions)} positions for {len(rows)} events"
            return _Outcome(error=StoreError(self._backend.where, reason))
        self._versions.written(last)
        return _Outcome(versions, positions, duration_ns=time.perf_counter_ns() - started)

    def _commit_runs(self, runs: list[tuple[Guard | None, list[Queued]]]) -> list[_Outcome]:
        """Commits each run in its own transaction, numbered by the database (in the
        writer thread); a run that fails leaves the others to commit."""
        shared = self._shared
        assert shared is not None
        outcomes: list[_Outcome] = []
        for guard, batch in runs:
            rows: list[NewRow] = [
                (p.stream, 0, p.topic, p.state) for items, _, _ in batch for p in items
            ]
            try:
                started = time.perf_counter_ns()
                positions, versions = shared.insert_numbered(rows, guard)
            except Exception as e:  # every caller of the run must hear of it, bug or not
                outcomes.append(_Outcome(error=_store_error(e, self._backend.where)))
                continue
            if len(positions) != len(rows):
                reason = f"the recorder gave {len(positions)} positions for {len(rows)} events"
                outcomes.append(_Outcome(error=StoreError(self._backend.where, reason)))
                continue
            outcomes.append(
                _Outcome(versions, positions, duration_ns=time.perf_counter_ns() - started)
            )
        return outcomes

    def _number(
        self, prepared: list[Prepared], new: set[str]
    ) -> tuple[list[NewRow], list[int], dict[str, int]]:
        """Gives each event the next version of its stream; also each stream's last."""
        last = self._versions.last(p.stream for p in prepared if p.stream not in new)
        last.update(dict.fromkeys(new, 0))
        rows: list[NewRow] = []
        versions: list[int] = []
        for stream, topic, state, _ in prepared:
            version = last[stream] + 1
            last[stream] = version
            versions.append(version)
            rows.append((stream, version, topic, state))
        return rows, versions, last

    def _landed(self, batch: list[Queued], outcome: _Outcome) -> None:
        """Settles the flush's last transaction, then flushes what was queued meanwhile."""
        self._settle(batch, outcome)
        if self._queue:
            self._loop.call_soon(self._flush)
        else:
            self._busy = False
            self._drained.set()

    def _landed_runs(
        self, runs: list[tuple[Guard | None, list[Queued]]], outcomes: list[_Outcome]
    ) -> None:
        for (_, batch), outcome in zip(runs[:-1], outcomes[:-1], strict=True):
            self._settle(batch, outcome)
        self._landed(runs[-1][1], outcomes[-1])

    def _settle(self, batch: list[Queued], outcome: _Outcome) -> None:
        """Resolves one transaction's waiters with its events, or fails them all."""
        self._note_fault(outcome.error)
        if outcome.error is not None:
            for _, waiter, _ in batch:
                if not waiter.done():
                    waiter.set_exception(outcome.error)
        else:
            self.batches += 1
            self._resolve(batch, outcome.versions, outcome.positions)
            if self.on_batch is not None:
                self.on_batch(len(outcome.positions), outcome.duration_ns)
            self._on_commit()

    def _note_fault(self, error: StoreError | None) -> None:
        """Keeps `fault`, logging once as the log stops and starts taking appends (a full
        disk fails every batch until there is room: a line each would flood the log).
        A lost lease or a refused claim leaves it as it was: the log is sound, the node
        only no longer owns a shard."""
        if error is not None and isinstance(error, LeaseLost | ClaimRefused):
            return
        if error is not None and self.fault is None:
            logger.error("the event log refuses appends: %s", error)
        elif error is None and self.fault is not None:
            logger.warning("the event log takes appends again (%s)", self._backend.where)
        self.fault = error

    def _resolve(
        self,
        batch: list[Queued],
        versions: list[int],
        positions: Sequence[int],
    ) -> None:
        i = 0
        landed: list[Recorded] = []
        for prepared, _, _ in batch:
            for p in prepared:
                pending = p.pending
                landed.append(
                    _recorded(
                        positions[i],
                        p.stream,
                        versions[i],
                        pending.at,
                        pending.event,
                        pending.traceparent,
                        self.origin,
                    )
                )
                i += 1
        i = 0
        for prepared, waiter, _ in batch:
            records, i = landed[i : i + len(prepared)], i + len(prepared)
            if not waiter.done():  # a caller that stopped waiting still had its events written
                waiter.set_result(records)


def _store_error(e: Exception, where: str) -> StoreError:
    """`e` as the `StoreError` the batch's callers get (a bug becomes one, its cause kept)."""
    if isinstance(e, StoreError):
        return e
    error = StoreError(where, repr(e))
    error.__cause__ = e
    return error


def _runs(batch: list[Queued]) -> list[tuple[Guard | None, list[Queued]]]:
    """The batch cut into runs of consecutive appends that may share a transaction: no
    guard, or the same fence (one check decides for all of them); a claim runs alone."""
    runs: list[tuple[Guard | None, list[Queued]]] = []
    for queued in batch:
        guard = queued[2]
        if runs and not isinstance(guard, Claim) and runs[-1][0] == guard:
            runs[-1][1].append(queued)
        else:
            runs.append((guard, [queued]))
    return runs
