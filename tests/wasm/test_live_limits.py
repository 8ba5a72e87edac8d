"""Limits changed on a live instance (`caxton config set`) hold from its next call."""

from __future__ import annotations

import time

from caxton.domain.events import Limits
from caxton.shell.wasm import Completed, Trapped, WasmHost
from tests.wasm.wasm_support import FAST, Loader, Recorder


def test_a_raised_memory_limit_lets_a_live_instance_grow_further(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("hog"), FAST)

    instance.set_limits(Limits(memory_bytes=2 << 20, timeout_ms=FAST.timeout_ms))
    outcome = instance.handle("{}", Recorder())

    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("memory", "out of memory (limit 2 MiB)")


def test_a_shorter_time_budget_stops_the_next_call_sooner(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("loop"), Limits(memory_bytes=1 << 20, timeout_ms=5_000))

    instance.set_limits(Limits(memory_bytes=1 << 20, timeout_ms=50))
    started = time.monotonic()
    outcome = instance.handle("{}", Recorder())

    assert isinstance(outcome, Trapped) and outcome.kind == "timeout"
    assert time.monotonic() - started < 2


def test_a_longer_budget_moves_a_short_agent_off_the_event_loop(
    host: WasmHost, load: Loader
) -> None:
    instance = host.instantiate(load("silent"), FAST)
    assert instance.runs_inline

    instance.set_limits(Limits(memory_bytes=FAST.memory_bytes, timeout_ms=1_000))

    assert not instance.runs_inline
    assert isinstance(instance.handle("{}", Recorder()), Completed)
