"""Inline calls for short timeouts, the worker pool for long ones: the loop keeps running."""

from __future__ import annotations

import asyncio
import threading

from caxton.domain.events import Limits
from caxton.shell.wasm import INLINE_TIMEOUT_MS, Completed, Trapped, WasmHost
from tests.wasm.wasm_support import FAST, Loader, Recorder


class ThreadNoting(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def send(self, envelope_json: str) -> str:
        self.threads.append(threading.current_thread().name)
        return super().send(envelope_json)


async def test_a_short_timeout_runs_inline_on_the_loop_thread(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("echo"), FAST)
    assert FAST.timeout_ms <= INLINE_TIMEOUT_MS and instance.runs_inline
    services = ThreadNoting()
    assert isinstance(await instance.handle_async("{}", services), Completed)
    assert services.threads == [threading.current_thread().name]


async def test_a_long_timeout_runs_on_a_worker_and_host_calls_follow_it(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("echo"), Limits(memory_bytes=1 << 20, timeout_ms=1000))
    assert not instance.runs_inline
    services = ThreadNoting()
    assert isinstance(await instance.init_async("{}", services), Completed)
    assert isinstance(await instance.handle_async("{}", services), Completed)
    assert services.threads[0].startswith("caxton-agent")
    assert services.sent == ["{}"]


async def test_an_endless_loop_on_a_worker_does_not_block_the_event_loop(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("loop"), Limits(memory_bytes=1 << 20, timeout_ms=400))
    looping = asyncio.ensure_future(instance.handle_async("{}", Recorder()))
    other_work = asyncio.Event()
    asyncio.get_running_loop().call_soon(other_work.set)

    await other_work.wait()  # the event loop ran other work ...
    assert not looping.done()  # ... while the guest was still spinning on its worker
    outcome = await looping
    assert isinstance(outcome, Trapped) and outcome.kind == "timeout"
