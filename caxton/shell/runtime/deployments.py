"""Deploy, stop, remove and reconfigure: an agent's lifecycle, decided then committed.

Each change is validated, committed through the node like any other event, and only
then applied to the running instances (started, stopped, reconfigured in place).
Changes to one agent's name run one at a time; the message path never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace

from caxton.domain.agents import AgentState, runs
from caxton.domain.deployment import validate_deployment
from caxton.domain.events import (
    DEFAULT_SNAPSHOT_EVERY,
    AgentDeployed,
    AgentReconfigured,
    AgentRemoved,
    AgentStopped,
    Limits,
    RestartPolicy,
)
from caxton.domain.handling import Undelivered
from caxton.domain.ids import split_instance_key
from caxton.domain.placement import shard_of
from caxton.domain.settings import validate_reconfiguration
from caxton.domain.tools import validate_grants
from caxton.shell.runtime.actor import InstanceActor
from caxton.shell.runtime.errors import AgentExists, AgentNotFound
from caxton.shell.runtime.ports import Runtime
from caxton.shell.wasm import check_memory


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploySpec:
    name: str
    component: bytes
    capabilities: tuple[str, ...] = ()
    replicas: int = 1
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    config: str = ""
    replace: bool = False
    tools: tuple[str, ...] = ()
    keep_memory: bool = False
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY


class Deployments:
    """The running instances of a node's agents (`actors`, which the node's loop reads),
    and the changes that start and stop them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.actors: dict[str, InstanceActor] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def deploy(self, spec: DeploySpec) -> None:
        runtime = self.runtime
        runtime.check_running()
        validate_deployment(
            spec.name,
            replicas=spec.replicas,
            capabilities=spec.capabilities,
            limits=spec.limits,
            config=spec.config,
        )
        tools = runtime.tools
        grants = validate_grants(spec.tools, tools.servers if tools is not None else {})
        spec = dataclass_replace(spec, tools=grants)
        async with self._lock(spec.name):
            await self._deploy(spec)

    async def _deploy(self, spec: DeploySpec) -> None:
        runtime = self.runtime
        existing = runtime.agents.get(spec.name)
        if existing is not None and not spec.replace:
            raise AgentExists(spec.name)
        # compiling can take seconds (a Python agent): off the loop, unless already loaded
        loaded = runtime.host.cache.loaded(spec.component)
        if loaded is None:
            loaded = await asyncio.to_thread(runtime.host.load, spec.component, spec.name)
        check_memory(loaded.initial_memory, spec.limits.memory_bytes, spec.name)
        await runtime.share_component(loaded.digest, spec.component)
        if existing is not None:
            await self._stop(spec.name, "agent redeployed")
        await runtime.commit(
            [
                AgentDeployed(
                    agent=spec.name,
                    component=loaded.digest,
                    component_size=loaded.size,
                    replicas=spec.replicas,
                    capabilities=spec.capabilities,
                    limits=spec.limits,
                    restart=spec.restart,
                    config=spec.config,
                    tools=spec.tools,
                    keep_memory=spec.keep_memory,
                    snapshot_every=spec.snapshot_every,
                )
            ]
        )
        # in a cluster, the node holding the agent's shard starts it when it folds the deploy
        actors = self.start(spec.name) if runtime.owns(spec.name) else []
        # answer once every instance ran init (or gave up), so `status` is true at once
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(spec.limits.timeout_ms / 1000 + 5):
                for actor in actors:
                    await actor.started.wait()

    async def stop_agent(self, name: str) -> None:
        self.runtime.check_running()
        async with self._lock(name):
            agent = self.runtime.agents.get(name)
            if agent is None:
                raise AgentNotFound(name)
            await self._stop(name, "agent stopped")
            if agent.status != "stopped":
                await self.runtime.commit([AgentStopped(agent=name)])

    async def remove_agent(self, name: str) -> None:
        self.runtime.check_running()
        async with self._lock(name):
            if name not in self.runtime.agents:
                raise AgentNotFound(name)
            await self._stop(name, "agent removed")
            await self.runtime.commit([AgentRemoved(agent=name)])

    async def reconfigure(self, change: AgentReconfigured) -> AgentState:
        """`caxton config set`: validates, records the change, and applies it to the running
        instances without restarting them. Returns the agent as it is now."""
        self.runtime.check_running()
        validate_reconfiguration(change)
        async with self._lock(change.agent):
            if change.agent not in self.runtime.agents:
                raise AgentNotFound(change.agent)
            await self.runtime.commit([change])
            agent = self.runtime.agents[change.agent]
            self._apply(agent)
            return agent

    async def follow(
        self, event: AgentDeployed | AgentStopped | AgentRemoved | AgentReconfigured
    ) -> None:
        """Another node of the cluster changed an agent this node runs: the change is in
        the log already; do here what it means for the instances."""
        name = event.agent
        async with self._lock(name):
            agent = self.runtime.agents.get(name)
            match event:
                case AgentDeployed():
                    await self._stop(name, "agent redeployed")
                    if agent is not None and agent.status == "running":
                        await self._start_here(agent)
                case AgentStopped():
                    await self._stop(name, "agent stopped")
                case AgentRemoved():
                    await self._stop(name, "agent removed")
                case AgentReconfigured():
                    if agent is not None:
                        self._apply(agent)

    async def take_over(self, name: str) -> None:
        """Starts an agent of a shard this node just claimed, unless it runs here already,
        and delivers what is open for it."""
        async with self._lock(name):
            agent = self.runtime.agents.get(name)
            if agent is not None and agent.status == "running" and not self._keys(name):
                await self._start_here(agent)

    async def _start_here(self, agent: AgentState) -> None:
        """Starts an agent this node holds the shard of, with its component fetched if it
        was deployed elsewhere, and delivers what is open for it in the same step."""
        await self.runtime.fetch_component(agent.component)
        if self.runtime.owns(agent.name):  # still: a shard may go meanwhile
            self.start(agent.name)
            self.runtime.redeliver(agent.name)

    def _apply(self, agent: AgentState) -> None:
        """A reconfigured agent's settings, applied to its running instances."""
        for key in self._keys(agent.name):
            self.actors[key].apply(agent)

    def _keys(self, name: str) -> list[str]:
        """The keys (`name#replica`) of an agent's running instances."""
        return [k for k in self.actors if split_instance_key(k)[0] == name]

    async def stop_shard(self, shard: int) -> None:
        """Stops the instances of a shard's agents, the node giving the shard up: what
        their mailboxes held stays open in the log, for the shard's next holder."""
        keys = [k for k in self.actors if shard_of(split_instance_key(k)[0]) == shard]
        await asyncio.gather(*(self.actors.pop(key).stop() for key in keys))

    def start(self, name: str) -> list[InstanceActor]:
        """Starts the instances of a deployed agent, but those that failed for good."""
        agent = self.runtime.agents[name]
        started = []
        for replica in range(len(agent.instances)):
            if not runs(agent, replica):
                continue
            actor = InstanceActor(self.runtime, name, replica, agent.limits.mailbox)
            self.actors[actor.key] = actor
            actor.start()
            started.append(actor)
        return started

    async def stop_all(self) -> None:
        """Stops every instance (the agents stay deployed): the node is shutting down."""
        await asyncio.gather(*(a.stop() for a in self.actors.values()))
        self.actors.clear()

    async def _stop(self, name: str, reason: str) -> None:
        """Stops an agent's instances; what their mailboxes held is recorded undelivered."""
        for key in self._keys(name):
            left = await self.actors.pop(key).stop()
            if left:
                await self.runtime.submit([Undelivered(m, key, reason) for m in left])

    def _lock(self, name: str) -> asyncio.Lock:
        """Deploy, stop and remove of one name run one at a time."""
        return self._locks.setdefault(name, asyncio.Lock())
