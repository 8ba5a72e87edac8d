"""Forking a conversation, the part that runs wasmtime: the participants' recorded builds,
fetched from the log, run in a sandbox whose sends are collected and whose host answers
come from the journal (`caxton replay --fork-at STEP --edit F=V`)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from caxton.domain.acl import AclMessage
from caxton.domain.events import AgentDeployed, HostCall, Limits, Recorded
from caxton.replay.fork import Fork, Handling, fork
from caxton.replay.recording import Recording
from caxton.replay.reexec import Journal, Script
from caxton.shell.archive import Source
from caxton.shell.reexec import ReplayServices
from caxton.shell.wasm import (
    AgentError,
    AgentInstance,
    LoadedComponent,
    Trapped,
    WasmError,
    WasmHost,
)


class SandboxRunner:
    """Each (agent, replica) one instance of its recorded build, run on this thread."""

    def __init__(
        self, host: WasmHost, components: dict[str, bytes], limits: dict[str, Limits]
    ) -> None:
        self._host = host
        self._components = components
        self._limits = limits
        self._loaded: dict[str, LoadedComponent] = {}
        self._instances: dict[tuple[str, int], AgentInstance] = {}
        self._plans: dict[str, Script] = {}

    def start(self, plan: Script, replica: int) -> str:
        agent = plan.agent
        self._plans[agent] = plan
        loaded = self._loaded.get(plan.component)
        if loaded is None:
            wasm = self._components.get(plan.component)
            if wasm is None:
                return f"the log does not hold {agent}'s build ({plan.component[:19]}…)"
            try:
                loaded = self._loaded[plan.component] = self._host.load(wasm, agent)
            except WasmError as exc:
                return str(exc)
        old = self._instances.pop((agent, replica), None)
        if old is not None:
            old.close()
        limits = self._limits.get(agent, Limits())
        instance = self._host.instantiate(loaded, limits, name=f"{agent}#{replica}")
        started = instance.init(
            plan.config, ReplayServices(agent, None, Journal(plan.init_journal))
        )
        if isinstance(started, Trapped | AgentError):
            instance.close()
            return started.reason if isinstance(started, Trapped) else started.text
        self._instances[(agent, replica)] = instance
        return ""

    def handle(
        self, agent: str, replica: int, message: AclMessage, journal: Sequence[HostCall]
    ) -> Handling:
        instance = self._instances.get((agent, replica))
        if instance is None or not instance.alive:  # trapped before: restarted, as the runtime does
            why = self.start(self._plans[agent], replica)
            if why:
                return Handling(trap=f"init: {why}")
            instance = self._instances[(agent, replica)]
        services = ReplayServices(agent, message, Journal(journal))
        result = instance.handle(json.dumps(message.to_dict()), services)
        surprises = tuple(services.journal.surprises)
        if isinstance(result, Trapped):
            return Handling(trap=f"{result.kind}: {result.reason}", surprises=surprises)
        error = result.text if isinstance(result, AgentError) else ""
        return Handling(sent=tuple(services.sent), error=error, surprises=surprises)

    def close(self) -> None:
        for instance in self._instances.values():
            instance.close()
        self._instances.clear()


async def forked(
    source: Source,
    recording: Recording,
    history: Sequence[Recorded],
    step: int,
    edits: Sequence[tuple[str, str]],
) -> Fork:
    """The fork, its agents run off the event loop; raises `BadEdit`."""
    components = await _components(source, [*history, *recording.events])
    limits = {name: agent.limits for name, agent in recording.prelude.agents.items()}

    def run() -> Fork:
        with (
            tempfile.TemporaryDirectory(prefix="caxton-fork-") as cache,
            WasmHost(Path(cache), workers=1) as host,
        ):
            runner = SandboxRunner(host, components, limits)
            try:
                return fork(recording, history, step, edits, runner)
            finally:
                runner.close()

    return await asyncio.to_thread(run)


async def _components(source: Source, events: Sequence[Recorded]) -> dict[str, bytes]:
    """The builds the story's agents were deployed with, as the source holds them."""
    digests = {r.event.component for r in events if isinstance(r.event, AgentDeployed)}
    found: dict[str, bytes] = {}
    for digest in sorted(digests):
        wasm = await source.component(digest)
        if wasm is not None:
            found[digest] = wasm
    return found
