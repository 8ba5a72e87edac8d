"""Re-execution, the part that runs wasmtime: a new build of one agent, fed its recorded
inputs and host answers (`caxton replay --with AGENT=FILE`).

Nothing leaves the sandbox: what the build sends is collected, not delivered; `now`,
`random` and tool results come from the journal; no tool server is started.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from caxton.domain.acl import DEFAULT_MAX_CONTENT_BYTES, AclMessage
from caxton.domain.errors import InvalidMessage
from caxton.domain.events import Limits, Recorded
from caxton.domain.sending import outgoing
from caxton.replay.recording import Recording
from caxton.replay.reexec import (
    Input,
    Journal,
    Outcome,
    Report,
    Script,
    judge,
    script,
)
from caxton.shell.wasm import (
    AgentError,
    AgentInstance,
    LoadedComponent,
    SendRefused,
    ToolFailed,
    Trapped,
    WasmError,
    WasmHost,
)


class ReexecFailed(Exception):
    """The new build cannot be run at all (invalid component, `init` fails)."""

    def __init__(self, message: str, *, trapped: bool = False) -> None:
        super().__init__(message)
        self.trapped = trapped
        """Whether `init` trapped (rather than returned an error)."""


class ReplayServices:
    """The host as the recorded run saw it: journaled answers, sends collected."""

    def __init__(self, agent: str, cause: AclMessage | None, journal: Journal) -> None:
        self.agent = agent
        self.cause = cause
        self.journal = journal
        self.sent: list[AclMessage] = []

    def send(self, envelope_json: str) -> str:
        try:
            message = outgoing(
                envelope_json,
                agent=self.agent,
                cause=self.cause,
                index=len(self.sent),
                max_content_bytes=DEFAULT_MAX_CONTENT_BYTES,
            )
        except InvalidMessage as exc:
            raise SendRefused(str(exc)) from None
        self.sent.append(message)
        return message.id

    def log(self, level: str, text: str) -> None:
        pass  # replay emits nothing

    def now(self) -> int:
        call = self.journal.take("now")
        return int(call.value) if call else 0

    def random(self) -> int:
        call = self.journal.take("random")
        return int(call.value) if call else 0

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        call = self.journal.take("call-tool")
        if call is None:
            raise ToolFailed("replay: no recorded result for this tool call")
        if call.kind == "tool-error":
            raise ToolFailed(call.value)
        recorded = json.loads(call.value)
        if (recorded.get("server"), recorded.get("tool")) != (server, tool):
            self.journal.unanswerable(
                f"called {server}.{tool} where the record has "
                f"{recorded.get('server')}.{recorded.get('tool')}"
            )
        if "error" in recorded:
            raise ToolFailed(str(recorded["error"]))
        return str(recorded.get("ok", ""))


async def reexecute(
    recording: Recording, history: Sequence[Recorded], agent: str, wasm: bytes, build: str
) -> Report:
    """Runs `wasm` as `agent` on the agent's recorded inputs; compares every answer."""
    return await rerun_script(recording, script(recording, agent, history), wasm, build)


async def rerun_script(recording: Recording, plan: Script, wasm: bytes, build: str) -> Report:
    """Runs `wasm` on one script of `recording` (its memories restored, if it has any)."""
    deployed = recording.prelude.agents.get(plan.agent)
    with Rerun.open(wasm, build) as rerun:
        return await rerun.run(plan, deployed.limits if deployed else Limits())


class Rerun:
    """A new build, compiled once, run on as many scripts as asked. Scripts may run at
    once (up to the host's workers): each has instances of its own, and an instance is
    only ever in one call at a time."""

    def __init__(self, host: WasmHost, loaded: LoadedComponent, build: str) -> None:
        self._host = host
        self._loaded = loaded
        self.build = build

    @classmethod
    @contextmanager
    def open(cls, wasm: bytes, build: str, *, workers: int = 1) -> Iterator[Rerun]:
        """Compiles `wasm` (raises `ReexecFailed` when it is no valid component)."""
        with (
            tempfile.TemporaryDirectory(prefix="caxton-reexec-") as cache,
            WasmHost(Path(cache), workers=workers) as host,
        ):
            try:
                loaded = host.load(wasm, build)
            except WasmError as exc:
                raise ReexecFailed(str(exc)) from None
            yield cls(host, loaded, build)

    async def run(self, plan: Script, limits: Limits) -> Report:
        """The build on one script's inputs, each compared with what was recorded."""
        agent = plan.agent
        outcomes: list[Outcome] = []
        instances: dict[int, AgentInstance] = {}
        try:
            for item in plan.inputs:
                instance = instances.get(item.replica)
                if instance is None:
                    instance = await self._started(plan, limits, item.replica)
                    instances[item.replica] = instance
                outcomes.append(await _run(instance, agent, item))
                if not instance.alive:
                    instances.pop(item.replica).close()
        finally:
            for instance in instances.values():
                instance.close()
        return Report(agent=agent, build=self.build, outcomes=tuple(outcomes))

    async def _started(self, plan: Script, limits: Limits, replica: int) -> AgentInstance:
        agent = plan.agent
        instance = self._host.instantiate(self._loaded, limits, name=f"{agent}#{replica}")
        init = ReplayServices(agent, None, Journal(plan.init_journal))
        started = await instance.init_async(plan.config, init, on_pool=True)
        if isinstance(started, Trapped | AgentError):
            instance.close()
            why = started.reason if isinstance(started, Trapped) else started.text
            raise ReexecFailed(
                f"the new build of {agent} fails in init: {why}",
                trapped=isinstance(started, Trapped),
            )
        memory = dict(plan.memories).get(replica)
        if memory is not None:
            restored = await _restored(instance, memory, init)
            if restored:
                instance.close()
                raise ReexecFailed(
                    f"the new build of {agent} cannot take its recorded memory: {restored}",
                    trapped=False,
                )
        return instance


async def _run(instance: AgentInstance, agent: str, item: Input) -> Outcome:
    services = ReplayServices(agent, item.message, Journal(item.journal))
    result = await instance.handle_async(json.dumps(item.message.to_dict()), services, on_pool=True)
    surprises = list(services.journal.surprises)
    unanswered = services.journal.unanswered
    if isinstance(result, Trapped):
        # as in the runtime: a handling that traps sends nothing
        trap = f"{result.kind}: {result.reason}"
        return judge(item, (), trap=trap, surprises=surprises, unanswered=unanswered)
    if not item.trap and services.journal.unused():
        surprises.append(f"did not ask for {', '.join(services.journal.unused())}() as recorded")
    error = result.text if isinstance(result, AgentError) else ""
    return judge(item, services.sent, error=error, surprises=surprises, unanswered=unanswered)


async def _restored(instance: AgentInstance, memory: str, services: ReplayServices) -> str:
    """Restores a recorded memory into a new build; why it could not, or ""."""
    if not instance.may_keep_memory:
        return "it exports no snapshot/restore"
    try:
        outcome = await instance.restore_async(memory, services)
    except WasmError as exc:
        return str(exc)
    if isinstance(outcome, Trapped):
        return f"restore trapped: {outcome.kind}: {outcome.reason}"
    return outcome.text if isinstance(outcome, AgentError) else ""
