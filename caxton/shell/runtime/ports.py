"""What an actor may ask of the node: the narrow interface that keeps them apart.

The node drives actors (it imports them); actors, and the deployments that start and
stop them, reach back only through `Runtime`, so neither imports `node.py` (an import
contract keeps it so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from caxton.domain.agents import Agents
from caxton.domain.events import Event, Recorded
from caxton.domain.handling import Input
from caxton.domain.memory import Plan
from caxton.shell.runtime.clock import Clock
from caxton.shell.runtime.context import CallContext
from caxton.shell.tools import ToolCaller
from caxton.shell.wasm import WasmHost


class Ownership(Protocol):
    """Which agents this node of a cluster runs: those on the shards whose leases it holds."""

    def owns(self, agent: str) -> bool: ...

    @property
    def fence(self) -> Mapping[int, int]:
        """The shards held, with their epochs: every append is checked against them."""
        ...

    async def hand_over(self) -> None:
        """Gives every held shard up, recorded (a graceful stop, once the agents stopped)."""
        ...

    @property
    def unreachable(self) -> str:
        """Why the shared log does not answer (since when, the last error); "" while it
        does. The node takes no new work meanwhile."""
        ...


class Runtime(Protocol):
    """The node as an actor sees it."""

    @property
    def agents(self) -> Agents:
        """The agents as of the last commit."""
        ...

    @property
    def host(self) -> WasmHost: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tools(self) -> ToolCaller | None: ...

    @property
    def max_content_bytes(self) -> int: ...

    @property
    def log_failure(self) -> BaseException | None:
        """Set once an append failed: the node refuses all work until restarted."""
        ...

    def commit(self, events: Sequence[Event]) -> asyncio.Future[list[Recorded]]:
        """Appends events decided elsewhere; resolves once committed and folded in."""
        ...

    def submit(
        self, inputs: Sequence[Input], contexts: Sequence[CallContext] = ()
    ) -> asyncio.Future[list[Recorded]]:
        """Inputs for the next batch (with the calls whose logs follow its commit);
        resolves with their events once committed and folded in."""
        ...

    def ready(self, key: str) -> None:
        """The instance `key` can take queued messages inline again."""
        ...

    def owns(self, agent: str) -> bool:
        """Whether this node runs `agent`'s instances (always, outside a cluster)."""
        ...

    async def share_component(self, digest: str, wasm: bytes) -> None:
        """In a cluster, puts a deployed component where every node can fetch it."""
        ...

    async def fetch_component(self, digest: str) -> None:
        """In a cluster, fetches a component deployed on another node, if not here."""
        ...

    def redeliver(self, agent: str) -> None:
        """Delivers what is open for `agent`'s instances, which just started here."""
        ...

    async def memory_plan(self, agent: str, replica: int) -> Plan | None:
        """What rebuilding the memory of `agent#replica` takes, read from the log."""
        ...

    def check_running(self) -> None:
        """Raises `NodeStopping` or `LogFailed` when the node takes no new work."""
        ...
