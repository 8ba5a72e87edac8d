"""Content-addressed store of agent components: validated once, compiled once, cached on disk.

Layout under the cache directory:

    components/<sha256>.wasm              the uploaded bytes, so a digest is enough to restart
    <sha256>-<wasmtime version>.cwasm     `Component.serialize()` of the compiled code

Compiling a componentize-py agent takes seconds; deserializing its artifact takes
milliseconds. Artifacts are only ever read from this directory, which Caxton alone
writes (wasmtime must never deserialize untrusted bytes). Each file is written whole or
not at all; the partial files of a killed server are removed when the cache opens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import wasmtime
from wasmtime import component
from wasmtime.component._component import ExportIndex  # not re-exported for mypy

from caxton.domain.units import format_size
from caxton.shell.files import is_full, remove_partials, write_atomically
from caxton.shell.wasm.errors import InvalidComponent, StorageFull, UnknownComponent
from caxton.shell.wasm.validation import check_header, check_world, initial_memory

WASMTIME_VERSION = version("wasmtime")
_DIGEST = re.compile(r"[0-9a-f]{64}")

logger = logging.getLogger("caxton.wasm")


@dataclass(frozen=True, slots=True)
class LoadedComponent:
    """A compiled, validated agent component and the digest that names it."""

    digest: str
    component: component.Component
    size: int
    uses_wasi: bool = True
    initial_memory: int = 0
    """The declared minimum size in bytes of its largest memory (read once, at load)."""
    exports: dict[str, ExportIndex | None] = field(default_factory=dict, compare=False)
    """Export indices looked up once per component (by name on each instance costs more
    than the lookup by index); filled as instances ask."""

    def export_index(self, name: str) -> ExportIndex | None:
        """The index of an export of this component, None when it has none by that name."""
        if name not in self.exports:
            self.exports[name] = self.component.get_export_index(name)
        return self.exports[name]


class ComponentCache:
    """Validates, compiles and caches components; `compilations` counts real compiles.

    Its directory is written by this process alone (the data directory's lock, or a
    directory of its own), so every partial file found on opening it is a leftover."""

    def __init__(self, directory: Path, engine: wasmtime.Engine) -> None:
        self.directory = directory
        self._engine = engine
        self._sources = directory / "components"
        self._sources.mkdir(parents=True, exist_ok=True)
        for leftover in [*remove_partials(directory), *remove_partials(self._sources)]:
            logger.warning("removed %s, left by a server stopped while writing it", leftover)
        self._loaded: dict[str, LoadedComponent] = {}
        self._lock = threading.Lock()
        self.compilations = 0

    def load(self, wasm: bytes, name_for_errors: str) -> LoadedComponent:
        """The component for these bytes; raises `InvalidComponent` with a user-facing text."""
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            known = self._loaded.get(digest)
        if known is not None:
            return known
        check_header(wasm, name_for_errors)
        compiled = self._deserialize(digest) or self._compile(wasm, digest, name_for_errors)
        uses_wasi = check_world(self._engine, compiled, name_for_errors)
        source = self._sources / f"{digest}.wasm"
        if not source.exists():  # what a restart needs: an agent is not deployed without it
            _store(source, wasm, name_for_errors)
        loaded = LoadedComponent(
            digest=digest,
            component=compiled,
            size=len(wasm),
            uses_wasi=uses_wasi,
            initial_memory=initial_memory(wasm),
        )
        with self._lock:
            return self._loaded.setdefault(digest, loaded)

    def loaded(self, wasm: bytes) -> LoadedComponent | None:
        """The component for these bytes if it is already in memory (cheap: a hash and a lookup)."""
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            return self._loaded.get(digest)

    def get(self, digest: str) -> LoadedComponent:
        """A component stored earlier, from memory, the artifact cache or its source."""
        with self._lock:
            known = self._loaded.get(digest)
        if known is not None:
            return known
        source = self._sources / f"{digest}.wasm"
        if not source.exists():
            raise UnknownComponent(digest)
        return self.load(source.read_bytes(), f"{digest}.wasm")

    def source(self, digest: str) -> bytes:
        """The uploaded bytes of a component; raises `UnknownComponent`."""
        if not _DIGEST.fullmatch(digest):
            raise UnknownComponent(digest)
        path = self._sources / f"{digest}.wasm"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise UnknownComponent(digest) from None

    def has(self, digest: str) -> bool:
        with self._lock:
            if digest in self._loaded:
                return True
        return (self._sources / f"{digest}.wasm").exists()

    def artifact_path(self, digest: str) -> Path:
        return self.directory / f"{digest}-{WASMTIME_VERSION}.cwasm"

    def _deserialize(self, digest: str) -> component.Component | None:
        path = self.artifact_path(digest)
        if not path.exists():
            return None
        try:
            return component.Component.deserialize(self._engine, path.read_bytes())
        except wasmtime.WasmtimeError:
            return None  # made by another engine configuration: compile again

    def _compile(self, wasm: bytes, digest: str, name: str) -> component.Component:
        try:
            compiled = component.Component(self._engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidComponent(name, f"does not compile ({_first_line(exc)})") from None
        self.compilations += 1
        artifact = self.artifact_path(digest)
        try:
            write_atomically(artifact, bytes(compiled.serialize()))
        except OSError as exc:  # only a cache: the next start compiles again
            logger.warning("cannot keep the compiled %s: %s", name, exc.strerror or exc)
        return compiled


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _store(path: Path, data: bytes, name: str) -> None:
    """Writes an uploaded component; a full disk is `StorageFull`, said for people."""
    try:
        write_atomically(path, data)
    except OSError as exc:
        if not is_full(exc):
            raise
        raise StorageFull(
            f"{name}: cannot store the component ({format_size(len(data))}) in {path.parent}: "
            "no space left on the device; free space there, then deploy again"
        ) from None
