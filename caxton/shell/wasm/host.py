"""The WebAssembly host of one server: engine, epoch ticker, linker, cache, worker pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from caxton.domain.events import Limits
from caxton.shell.wasm.cache import ComponentCache, LoadedComponent
from caxton.shell.wasm.engine import EpochTicker, make_engine
from caxton.shell.wasm.imports import make_linker
from caxton.shell.wasm.instance import AgentInstance

DEFAULT_WORKERS = 4


class WasmHost:
    """Loads components and makes instances; `close()` stops the ticker and the pool."""

    def __init__(self, cache_dir: Path, *, workers: int = DEFAULT_WORKERS) -> None:
        self.engine = make_engine()
        self.cache = ComponentCache(cache_dir, self.engine)
        self._linker = make_linker(self.engine)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="caxton-agent")
        self._ticker = EpochTicker(self.engine)
        self._ticker.start()

    def load(self, wasm: bytes, name_for_errors: str) -> LoadedComponent:
        """Validates and compiles (or finds cached); raises `InvalidComponent`."""
        return self.cache.load(wasm, name_for_errors)

    def get(self, digest: str) -> LoadedComponent:
        """A component loaded earlier, even by an earlier process; raises `UnknownComponent`."""
        return self.cache.get(digest)

    def instantiate(
        self, loaded: LoadedComponent, limits: Limits, *, name: str = "agent"
    ) -> AgentInstance:
        """A fresh instance in its own Store; raises `InstantiationFailed`."""
        return AgentInstance(self.engine, self._linker, loaded, limits, self._pool, name)

    def close(self) -> None:
        self._ticker.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> WasmHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
