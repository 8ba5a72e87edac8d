"""Uploads are validated with user-facing errors; compiled code is cached by content hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wasmtime

from caxton.shell.wasm import (
    Completed,
    ComponentCache,
    InvalidComponent,
    UnknownComponent,
    WasmHost,
    check_memory,
    make_engine,
)
from caxton.shell.wasm.cache import WASMTIME_VERSION
from tests.support import wat
from tests.wasm.wasm_support import FAST, Recorder


def refusal(host: WasmHost, wasm: bytes) -> str:
    with pytest.raises(InvalidComponent) as caught:
        host.load(wasm, "agent.wasm")
    return str(caught.value)


def test_bytes_that_are_not_webassembly_are_refused(host: WasmHost) -> None:
    assert refusal(host, b"#!/bin/sh\necho hi\n") == (
        "agent.wasm: not a WebAssembly file (it starts with b'#!/bin/s')"
    )


def test_a_core_module_is_refused_with_a_hint(host: WasmHost) -> None:
    assert refusal(host, wat("core-module")) == (
        "agent.wasm: a core WebAssembly module, not a component "
        "(build it with 'caxton agent build')"
    )


def test_a_component_without_handle_is_refused(host: WasmHost) -> None:
    assert refusal(host, wat("no-handle")) == (
        "agent.wasm: missing export 'handle' (the caxton:agent world requires it)"
    )


def test_a_component_importing_outside_the_world_is_refused(host: WasmHost) -> None:
    assert refusal(host, wat("foreign-import")) == (
        "agent.wasm: imports 'acme:bank/vault@1.0.0', which is outside the caxton:agent "
        "world (only 'caxton:agent/host@0.1.0' and WASI are provided)"
    )


def test_a_host_import_with_the_wrong_signature_is_refused(host: WasmHost) -> None:
    assert refusal(host, wat("mistyped")) == (
        "agent.wasm: imports 'send' as func(u32) -> u64, but the caxton:agent world "
        "declares func(string) -> result<string, string>"
    )


def test_every_host_function_with_its_declared_signature_is_accepted(host: WasmHost) -> None:
    for name in ("reply", "relay", "clock"):  # send; log, call-tool; now, random
        host.load(wat(name), f"{name}.wasm")


def test_a_truncated_component_is_refused(host: WasmHost) -> None:
    message = refusal(host, wat("silent")[:40])
    assert message.startswith("agent.wasm: does not compile (")


def test_a_second_load_is_served_from_the_cache(tmp_path: Path) -> None:
    engine = make_engine()
    cache = ComponentCache(tmp_path, engine)
    first = cache.load(wat("reply"), "reply.wasm")
    artifact = tmp_path / f"{first.digest}-{WASMTIME_VERSION}.cwasm"
    assert artifact.exists()
    assert cache.load(wat("reply"), "reply.wasm") is first
    os.utime(artifact, (0, 0))
    restarted = ComponentCache(tmp_path, engine)
    again = restarted.load(wat("reply"), "reply.wasm")
    assert (cache.compilations, restarted.compilations) == (1, 0)
    assert artifact.stat().st_mtime == 0
    assert again.digest == first.digest


def test_a_digest_is_enough_after_a_restart(tmp_path: Path) -> None:
    with WasmHost(tmp_path) as before:
        digest = before.load(wat("reply"), "reply.wasm").digest
    with WasmHost(tmp_path) as after:
        loaded = after.get(digest)
        instance = after.instantiate(loaded, FAST)
        assert isinstance(instance.handle('{"id": "q"}', Recorder()), Completed)
        assert after.cache.compilations == 0


def test_an_unknown_digest_is_an_error(host: WasmHost) -> None:
    with pytest.raises(UnknownComponent):
        host.get("0" * 64)


def test_an_artifact_from_another_engine_config_is_recompiled(tmp_path: Path) -> None:
    digest = ComponentCache(tmp_path, make_engine()).load(wat("silent"), "s.wasm").digest
    other = wasmtime.Config()
    other.epoch_interruption = False
    cache = ComponentCache(tmp_path, wasmtime.Engine(other))
    assert cache.get(digest).digest == digest
    assert cache.compilations == 1


def test_a_memory_declared_over_the_agents_limit_is_refused(tmp_path: Path) -> None:
    cache = ComponentCache(tmp_path, make_engine())
    huge = cache.load(wat("huge-memory"), "agent.wasm").initial_memory
    silent = cache.load(wat("silent"), "agent.wasm").initial_memory
    with pytest.raises(InvalidComponent) as caught:
        check_memory(huge, 64 << 20, "agent.wasm")
    assert str(caught.value) == (
        "agent.wasm: declares a memory of 2,500.0 MiB at start, more than its memory limit "
        "of 64.0 MiB (raise it with --memory)"
    )
    check_memory(huge, 40_000 << 16, "agent.wasm")  # exactly its size fits
    check_memory(silent, 1 << 16, "agent.wasm")
