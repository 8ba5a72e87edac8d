"""Session-wide test plumbing: Python agents built once per session, and the load marker.

Building a Python agent with componentize-py takes tens of seconds, compiling its
component with wasmtime as long again, and several tests use the same example.
`agent_builds` builds (and, for a server's cache, compiles) each distinct agent once per
session, and once across pytest-xdist workers: they share pytest's base temporary
directory. Builds are keyed by a hash of everything the build reads. A failed build is
never stored: every test that asks for it builds it again and sees the failure.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from caxton.shell.agents import build as agent_build
from caxton.shell.datadir import DataDir
from caxton.shell.wasm import WasmHost

LOAD_TESTS = Path(__file__).parent / "load"


class AgentBuilds:
    """Components built from Python agent sources, stored under one directory by input hash."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.compiled_cache = directory / "compiled"  # a component cache (WasmHost's)
        directory.mkdir(parents=True, exist_ok=True)

    def component(self, source: Path) -> Path:
        """The component built from `source` (read-only: copy it to change it)."""
        with tempfile.TemporaryDirectory(dir=self.directory, prefix="source-") as scratch:
            # the build puts the source's folder on the agent's path: a folder holding only
            # the source keeps the build's inputs exactly those hashed below
            copy = Path(scratch) / "agent" / source.name
            copy.parent.mkdir()
            shutil.copyfile(source, copy)
            key = agent_build.build_inputs_digest(copy)
            target = self.directory / f"{source.stem}-{key[:32]}.wasm"
            with open(self.directory / f"{key}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it now
                if not target.exists():
                    built = agent_build.build_agent(copy, Path(scratch) / "agent.wasm")
                    built.output.chmod(0o444)
                    os.replace(built.output, target)
        return target

    def compiled(self, source: Path) -> Path:
        """The component's compiled code, as a server's component cache holds it (a
        `.cwasm` named by the component's digest and the wasmtime version)."""
        wasm = self.component(source).read_bytes()
        with open(self.directory / f"{hashlib.sha256(wasm).hexdigest()}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with WasmHost(self.compiled_cache, workers=1) as host:  # compiles if not cached
                return host.cache.artifact_path(host.load(wasm, f"{source.stem}.wasm").digest)

    def seed(self, data_dir: Path, *sources: Path) -> None:
        """Puts these agents' compiled code in the component cache of a server to start on
        `data_dir`, which then deploys them without compiling (seconds each). The cache
        checks what it reads: code from another engine configuration is compiled again."""
        components = DataDir(data_dir).components
        components.mkdir(parents=True, exist_ok=True)
        for source in sources:
            artifact = self.compiled(source)
            shutil.copyfile(artifact, components / artifact.name)


@pytest.fixture(scope="session")
def agent_builds(tmp_path_factory: pytest.TempPathFactory) -> AgentBuilds:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's base, shared by the workers (popen-gwN below it)
    return AgentBuilds(base / "agent-builds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/load is a load test: `dev.py test` runs them alone, after the
    # rest, so that memory and latency are measured without other tests on the CPU.
    for item in items:
        if item.path.is_relative_to(LOAD_TESTS) and item.get_closest_marker("load") is None:
            item.add_marker(pytest.mark.load)
    # Spread over workers, the slow tests go first so that none of them starts last.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
