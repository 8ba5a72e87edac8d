"""Traps, deadlines, memory limits and host failures become `Trapped`, and kill the instance."""

from __future__ import annotations

import time

import pytest

from caxton.domain.events import Limits
from caxton.shell.wasm import Completed, InstanceDead, InstantiationFailed, Trapped, WasmHost
from tests.wasm.wasm_support import FAST, Loader, Recorder


def test_unreachable_is_a_trap(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("trap"), FAST).handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("trap", "unreachable")


def test_a_trapped_instance_refuses_further_calls(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("trap"), FAST)
    instance.handle("{}", Recorder())
    assert not instance.alive
    with pytest.raises(InstanceDead, match="unreachable"):
        instance.handle("{}", Recorder())


def test_an_endless_loop_is_stopped_at_its_deadline(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("loop"), Limits(memory_bytes=1 << 20, timeout_ms=50))
    started = time.monotonic()
    outcome = instance.handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("timeout", "timed out after 50 ms")
    assert outcome.duration_us >= 50_000
    assert time.monotonic() - started < 5  # stopped, not merely slow


def test_growing_past_the_memory_limit_is_out_of_memory(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("hog"), FAST).handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("memory", "out of memory (limit 1 MiB)")


def test_endless_recursion_is_a_stack_overflow(host: WasmHost, load: Loader) -> None:
    outcome = host.instantiate(load("recurse"), FAST).handle("{}", Recorder())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("stack-overflow", "call stack exhausted")


class Broken(Recorder):
    def send(self, envelope_json: str) -> str:
        raise RuntimeError("the log is on fire")


def test_an_exception_in_a_host_service_is_a_host_error(host: WasmHost, load: Loader) -> None:
    instance = host.instantiate(load("echo"), FAST)
    outcome = instance.handle("{}", Broken())
    assert isinstance(outcome, Trapped)
    assert (outcome.kind, outcome.reason) == ("host-error", "RuntimeError: the log is on fire")
    assert not instance.alive


class WrongType(Recorder):
    def now(self) -> int:
        return -1


def test_a_host_service_answering_out_of_range_is_a_host_error(
    host: WasmHost, load: Loader
) -> None:
    outcome = host.instantiate(load("clock"), FAST).handle("{}", WrongType())
    assert isinstance(outcome, Trapped)
    assert outcome.kind == "host-error"
    assert "not a u64" in outcome.reason


def test_a_memory_limit_below_the_components_minimum_fails_instantiation(
    host: WasmHost, load: Loader
) -> None:
    expected = "silent: cannot instantiate (the component needs at least 64 KiB of memory; "
    with pytest.raises(InstantiationFailed) as caught:
        host.instantiate(load("silent"), Limits(memory_bytes=1024, timeout_ms=20), name="silent")
    assert str(caught.value) == expected + "the limit is 1 KiB)"


def test_a_trap_in_one_instance_leaves_the_host_usable(host: WasmHost, load: Loader) -> None:
    host.instantiate(load("loop"), FAST).handle("{}", Recorder())
    assert isinstance(host.instantiate(load("silent"), FAST).handle("{}", Recorder()), Completed)
