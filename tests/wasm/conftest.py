"""Fixtures for the WebAssembly host tests: a host on a temporary cache, a WAT loader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caxton.shell.wasm import LoadedComponent, WasmHost
from tests.wasm.wasm_support import wat


@pytest.fixture
def host(tmp_path: Path) -> Iterator[WasmHost]:
    with WasmHost(tmp_path / "cache") as wasm_host:
        yield wasm_host


@pytest.fixture
def load(host: WasmHost) -> Callable[[str], LoadedComponent]:
    def load_component(name: str) -> LoadedComponent:
        return host.load(wat(name), f"{name}.wasm")

    return load_component
