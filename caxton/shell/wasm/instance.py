"""One running agent: its own Store, limits and deadline; calls return an `Outcome`.

Execution model (docs/adr/0002-agent-abi-and-execution.md): an agent whose timeout
is at most `INLINE_TIMEOUT_MS` runs inline on the caller's thread (the event loop
stalls for at most that long); longer ones run on the host's worker pool, where
wasmtime releases the GIL, so an endless loop holds one worker until its deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeAlias

import wasmtime
from wasmtime import component

from caxton.domain.errors import bounded
from caxton.domain.events import Limits
from caxton.domain.frozen import positional
from caxton.shell.wasm import capi, imports
from caxton.shell.wasm.cache import LoadedComponent
from caxton.shell.wasm.engine import deadline_ticks
from caxton.shell.wasm.errors import InstanceDead, InstantiationFailed
from caxton.shell.wasm.outcome import (
    AgentError,
    Completed,
    Outcome,
    Trapped,
    classify_failure,
    format_bytes,
)
from caxton.shell.wasm.services import HostServices

INLINE_TIMEOUT_MS = 20
MAX_TOOL_WAIT_MS = 600_000
"""Tool waits not charged to one call's budget, at most (ADR 0006)."""

_Export: TypeAlias = "capi.GuestExport | capi.PortableExport | _Snapshot"


class AgentInstance:
    """A component instance in its own Store. One call at a time; dead after a trap."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: component.Linker,
        loaded: LoadedComponent,
        limits: Limits,
        pool: Executor,
        name: str = "agent",
    ) -> None:
        self.name = name
        self.digest = loaded.digest
        self.limits = limits
        self.runs_inline = limits.timeout_ms <= INLINE_TIMEOUT_MS
        self._pool = pool
        self._ticks = deadline_ticks(limits.timeout_ms)
        self._new_memory_limit: int | None = None
        self._dead: Trapped | None = None
        self._store: wasmtime.Store | None = wasmtime.Store(engine)
        if loaded.uses_wasi:
            self._store.set_wasi(wasmtime.WasiConfig())  # empty: no files, env, args, sockets
        self._store.set_limits(memory_size=limits.memory_bytes)
        self._store.set_epoch_deadline(self._ticks)
        try:
            instance = linker.instantiate(self._store, loaded.component)
        except wasmtime.WasmtimeError as exc:
            raise InstantiationFailed(f"{name}: cannot instantiate ({_why(exc, limits)})") from None
        self._init = _export(instance, self._store, loaded, "init", name)
        self._handle = _export(instance, self._store, loaded, "handle", name)
        self.fast_path = isinstance(self._handle, capi.GuestExport)
        snapshot = _optional(instance, self._store, loaded, "snapshot")
        restore = _optional(instance, self._store, loaded, "restore")
        self._snapshot = _Snapshot(snapshot) if snapshot and restore else None
        self._restore = capi.guest_export(self._store, restore) if snapshot and restore else None

    @property
    def alive(self) -> bool:
        return self._dead is None and self._store is not None

    @property
    def may_keep_memory(self) -> bool:
        """Whether the component exports `snapshot` and `restore` (caxton.domain.memory)."""
        return self._snapshot is not None

    def snapshot(self, services: HostServices) -> tuple[str | None, Outcome]:
        """Calls the guest's `snapshot()` on this thread: (its memory, the call's outcome);
        the memory is None unless the call completed."""
        export = self._snapshot
        if export is None:
            raise InstanceDead(f"{self.name}: the component exports no snapshot")
        export.value = None
        outcome = self._call(export, "", services)
        state, export.value = export.value, None
        return (state if isinstance(outcome, Completed) else None), outcome

    async def snapshot_async(
        self, services: HostServices, *, on_pool: bool = False
    ) -> tuple[str | None, Outcome]:
        """`snapshot`, inline or on the worker pool as `handle_async` would call."""
        if self.runs_inline and not on_pool:
            return self.snapshot(services)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.snapshot, services)

    async def restore_async(self, state: str, services: HostServices) -> Outcome:
        """`restore` on the worker pool: a large memory must not stall the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.restore, state, services)

    def restore(self, state: str, services: HostServices) -> Outcome:
        """Calls the guest's `restore(state)` on this thread."""
        if self._restore is None:
            raise InstanceDead(f"{self.name}: the component exports no restore")
        return self._call(self._restore, state, services)

    def init(self, config: str, services: HostServices) -> Outcome:
        """Calls the guest's `init(config)` on this thread."""
        return self._call(self._init, config, services)

    def handle(self, envelope_json: str | bytes, services: HostServices) -> Outcome:
        """Calls the guest's `handle(message)` on this thread."""
        return self._call(self._handle, envelope_json, services)

    async def init_async(
        self, config: str, services: HostServices, *, on_pool: bool = False
    ) -> Outcome:
        """`init`, inline or on the worker pool according to the agent's timeout;
        `on_pool` forces the pool (an agent that may wait for tools)."""
        return await self._dispatch(self._init, config, services, on_pool)

    async def handle_async(
        self, envelope_json: str | bytes, services: HostServices, *, on_pool: bool = False
    ) -> Outcome:
        """`handle`, inline or on the worker pool according to the agent's timeout;
        `on_pool` forces the pool (an agent that may wait for tools)."""
        return await self._dispatch(self._handle, envelope_json, services, on_pool)

    def set_limits(self, limits: Limits) -> None:
        """New limits for the calls after this one, on a live instance. The Store's memory
        limit changes on the calling thread, never under a call that is running."""
        if limits.memory_bytes != self.limits.memory_bytes:
            self._new_memory_limit = limits.memory_bytes
        self.limits = limits
        self.runs_inline = limits.timeout_ms <= INLINE_TIMEOUT_MS
        self._ticks = deadline_ticks(limits.timeout_ms)

    def close(self) -> None:
        """Drops the Store (and with it the instance's memory)."""
        self._store = None

    async def _dispatch(
        self, func: _Export, text: str | bytes, services: HostServices, on_pool: bool = False
    ) -> Outcome:
        if self.runs_inline and not on_pool:
            return self._call(func, text, services)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, func, text, services)

    def _call(self, func: _Export, text: str | bytes, services: HostServices) -> Outcome:
        store = self._store
        if store is None or self._dead is not None:
            why = self._dead.reason if self._dead is not None else "closed"
            raise InstanceDead(f"{self.name}: the instance is dead ({why}); start a new one")
        call = imports.ActiveCall(services)
        started = time.perf_counter_ns()
        started_us = time.time_ns() // 1000  # when, for the log; `started` measures how long
        cpu_started = time.thread_time_ns()  # this thread's CPU: a tool wait blocks it idle
        call.resume = self._rearm(store, started)
        imports.enter(call)
        try:
            if self._new_memory_limit is not None:
                store.set_limits(memory_size=self._new_memory_limit)
                self._new_memory_limit = None
            store.set_epoch_deadline(self._ticks)
            result = func(store, text)
        except Exception as exc:
            failed = self._failed(exc, call, _since(started))
            outcome = dataclasses.replace(
                failed, cpu_us=_cpu_since(cpu_started), started_us=started_us
            )
            self._dead = outcome
            return outcome
        finally:
            imports.leave()
        cpu_us = _cpu_since(cpu_started)
        if result is None:
            return _completed(_since(started), cpu_us, started_us)
        return _agent_error(bounded(result), _since(started), cpu_us, started_us)  # its text

    def _rearm(self, store: wasmtime.Store, started_ns: int) -> Callable[[int], None]:
        """After a host call that waited (a tool), the deadline again leaves the guest the
        rest of its budget: time spent waiting for a tool is bounded by the tool's timeout,
        not charged to the agent's per-message budget, up to MAX_TOOL_WAIT_MS in all (so
        a guest calling tools in an endless loop still meets its deadline)."""
        waited = [0]

        def resume(waited_ns: int) -> None:
            waited[0] = min(waited[0] + waited_ns, MAX_TOOL_WAIT_MS * 1_000_000)
            used_ms = (time.perf_counter_ns() - started_ns - waited[0]) / 1e6
            store.set_epoch_deadline(deadline_ticks(max(1, int(self.limits.timeout_ms - used_ms))))

        return resume

    def _failed(self, exc: Exception, call: imports.ActiveCall, duration_us: int) -> Trapped:
        if call.failure is not None:
            why = bounded(f"{type(call.failure).__name__}: {call.failure}")
            return Trapped("host-error", why, duration_us)
        if not isinstance(exc, wasmtime.WasmtimeError):
            return Trapped("host-error", bounded(f"{type(exc).__name__}: {exc}"), duration_us)
        return classify_failure(
            str(exc),
            timeout_ms=self.limits.timeout_ms,
            memory_limit=self.limits.memory_bytes,
            duration_us=duration_us,
        )


def _export(
    instance: component.Instance,
    store: wasmtime.Store,
    loaded: LoadedComponent,
    export: str,
    name: str,
) -> _Export:
    index = loaded.export_index(export)
    func = instance.get_func(store, index) if index is not None else None
    if func is None:
        raise InstantiationFailed(f"{name}: missing export '{export}'")
    return capi.guest_export(store, func)


def _optional(
    instance: component.Instance, store: wasmtime.Store, loaded: LoadedComponent, export: str
) -> component.Func | None:
    index = loaded.export_index(export)
    return instance.get_func(store, index) if index is not None else None


class _Snapshot:
    """`snapshot: func() -> result<string, string>` called as the other exports are (a
    store and a text, None or the guest's error back): the memory it returned is left
    in `value`. Taken every N handlings, so wasmtime-py's public call path is enough."""

    __slots__ = ("_func", "value")

    def __init__(self, func: component.Func) -> None:
        self._func = func
        self.value: str | None = None

    def __call__(self, store: wasmtime.Store, text: str | bytes) -> str | None:
        result = self._func(store)
        self._func.post_return(store)
        # result<string, string>: both sides strings, so wasmtime-py gives a tagged Variant
        if isinstance(result, component.Variant) and result.tag == "ok":
            self.value = str(result.payload)
            return None
        if isinstance(result, component.Variant):
            return bounded(str(result.payload))
        return bounded(f"snapshot returned {type(result).__name__}, not a result")


def _why(exc: wasmtime.WasmtimeError, limits: Limits) -> str:
    text = str(exc).strip()
    pages = re.search(r"memory minimum size of (\d+) pages exceeds memory limits", text)
    if pages:
        needed = int(pages.group(1)) << 16
        return (
            f"the component needs at least {format_bytes(needed)} of memory; "
            f"the limit is {format_bytes(limits.memory_bytes)}"
        )
    return text.splitlines()[0] if text else "failed"


def _since(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1000


def _cpu_since(started_ns: int) -> int:
    return (time.thread_time_ns() - started_ns) // 1000


# One outcome per guest call, made without its frozen __init__ (caxton.domain.frozen):
# a frozen __init__ pays object.__setattr__ per field, twice what these do.
_completed: Callable[[int, int, int], Completed] = positional(Completed)
_agent_error: Callable[[str, int, int, int], AgentError] = positional(AgentError)
