"""Fixtures for the WebAssembly host tests: a host on a temporary cache, a WAT loader.

`host` runs every test twice: through the C-API fast path (`capi`) and through
wasmtime-py's public API, which must behave the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caxton.shell.wasm import LoadedComponent, WasmHost, capi
from tests.support import wat


@pytest.fixture(params=["fast", "portable"])
def host(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WasmHost]:
    monkeypatch.setattr(capi, "ENABLED", request.param == "fast")
    with WasmHost(tmp_path / "cache") as wasm_host:
        yield wasm_host


@pytest.fixture
def load(host: WasmHost) -> Callable[[str], LoadedComponent]:
    def load_component(name: str) -> LoadedComponent:
        return host.load(wat(name), f"{name}.wasm")

    return load_component
