"""Re-execution, the part that runs wasmtime: a new build of one agent, fed its recorded
inputs and host answers (`caxton replay --with AGENT=FILE`).

Nothing leaves the sandbox: what the build sends is collected, not delivered; `now`,
`random` and tool results come from the journal; no tool server is started.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
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
    judge,
    script,
)
from caxton.shell.wasm import (
    AgentError,
    AgentInstance,
    SendRefused,
    ToolFailed,
    Trapped,
    WasmError,
    WasmHost,
)


class ReexecFailed(Exception):
    """The new build cannot be run at all (invalid component, `init` fails)."""


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
            self.journal.surprises.append(
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
    plan = script(recording, agent, history)
    deployed = recording.prelude.agents.get(agent)
    limits = deployed.limits if deployed else Limits()
    outcomes: list[Outcome] = []
    with (
        tempfile.TemporaryDirectory(prefix="caxton-reexec-") as cache,
        WasmHost(Path(cache), workers=1) as host,
    ):
        try:
            loaded = host.load(wasm, build)
        except WasmError as exc:
            raise ReexecFailed(str(exc)) from None
        instances: dict[int, AgentInstance] = {}
        for item in plan.inputs:
            instance = instances.get(item.replica)
            if instance is None:
                instance = host.instantiate(loaded, limits, name=f"{agent}#{item.replica}")
                init = ReplayServices(agent, None, Journal(plan.init_journal))
                started = await instance.init_async(plan.config, init, on_pool=True)
                if isinstance(started, Trapped | AgentError):
                    why = started.reason if isinstance(started, Trapped) else started.text
                    raise ReexecFailed(f"the new build of {agent} fails in init: {why}")
                instances[item.replica] = instance
            outcomes.append(await _run(instance, agent, item))
            if not instance.alive:
                instances.pop(item.replica).close()
        for instance in instances.values():
            instance.close()
    return Report(agent=agent, build=build, outcomes=tuple(outcomes))


async def _run(instance: AgentInstance, agent: str, item: Input) -> Outcome:
    services = ReplayServices(agent, item.message, Journal(item.journal))
    result = await instance.handle_async(json.dumps(item.message.to_dict()), services, on_pool=True)
    surprises = list(services.journal.surprises)
    if isinstance(result, Trapped):
        # as in the runtime: a handling that traps sends nothing
        trap = f"{result.kind}: {result.reason}"
        return judge(item, (), trap=trap, surprises=surprises)
    if not item.trap and services.journal.unused():
        surprises.append(f"did not ask for {', '.join(services.journal.unused())}() as recorded")
    error = result.text if isinstance(result, AgentError) else ""
    return judge(item, services.sent, error=error, surprises=surprises)
