"""Where a recorded conversation comes from: a running server (through the gRPC client),
or a log file read offline (a data directory, an imported log, a bundle)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Protocol

from caxton.domain.errors import quoted
from caxton.domain.events import Recorded
from caxton.domain.ids import agent_stream, conversation_stream, shard_stream
from caxton.domain.memory import Memory, Plan
from caxton.domain.placement import shard_of
from caxton.replay.recording import Recording, participants, record
from caxton.shell.archive.reader import LogFile, LogFileError
from caxton.shell.client import CaxtonClient, Connection, FailedPrecondition, NotFound
from caxton.shell.runtime.memory import RebuildFailed, memory_at, memory_plans
from caxton.shell.wasm import WasmHost

POLL_S = 0.25
"""How often a log file read offline is looked at again for a live conversation: another
process writes it, so there is nothing to wait on."""


class SourceError(Exception):
    """A source that cannot be read, or a conversation it does not hold."""


class Source(Protocol):
    """A log to read recorded conversations from."""

    where: str

    async def history(self, conversation_id: str) -> list[Recorded]:
        """The conversation's stream and its participants' agent streams (and, in a
        cluster's log, their shards' claims), in log order."""
        ...

    async def component(self, digest: str) -> bytes | None:
        """A component's bytes by sha256 digest; none when this source does not hold it."""
        ...

    def follow(self, after: int) -> AsyncIterator[Recorded]:
        """Every event after a position, then each new one as it is recorded."""
        ...

    async def memory(self, agent: str, replica: int, position: int) -> Memory | None:
        """An instance's own memory as of a position, rebuilt in a sandbox; None when it
        keeps none there. Raises `SourceError` when it cannot be rebuilt."""
        ...

    async def memory_plans(self, agent: str) -> list[Plan]:
        """Every handling of each of the agent's memories since it began."""
        ...

    def everything(self) -> AsyncIterator[Recorded]:
        """The whole log in order (for exports without a conversation)."""
        ...

    async def close(self) -> None: ...


async def recording(source: Source, conversation_id: str) -> tuple[Recording, list[Recorded]]:
    """The recording of a conversation, and the events it was made from."""
    history = await source.history(conversation_id)
    found = record(conversation_id, history)
    if not found.events:
        raise SourceError(f"no conversation {quoted(conversation_id)} in {source.where}")
    return found, history


async def _history(conversation: list[Recorded], agent_streams: AsyncStreams) -> list[Recorded]:
    names = participants(conversation)
    shards = sorted({shard_of(n) for n in names})
    streams = [agent_stream(n) for n in names] + [shard_stream(s) for s in shards]
    agents = await agent_streams(streams) if names else []
    return sorted([*conversation, *agents], key=lambda r: r.position)


class AsyncStreams(Protocol):
    async def __call__(self, streams: list[str]) -> list[Recorded]: ...


class LogSource:
    """A log file read offline: `DIR` (its `events.db` and `components/`), or a file."""

    def __init__(self, log: LogFile, components: Path | None) -> None:
        self._log = log
        self._components = components
        self.where = log.where
        self._host: WasmHost | None = None  # made when a memory is first asked for
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._cache_lock: IO[str] | None = None

    @classmethod
    async def open(cls, path: Path) -> LogSource:
        if path.is_dir():
            file, components = path / "events.db", path / "components" / "components"
            if not file.exists():
                raise SourceError(f"{path}: not a Caxton data directory (no events.db)")
        else:
            file, components = path, path.parent / "components" / "components"
        try:
            log = await LogFile.open(file)
        except LogFileError as exc:
            raise SourceError(str(exc)) from None
        return cls(log, components if components.is_dir() else None)

    @property
    def log(self) -> LogFile:
        return self._log

    async def history(self, conversation_id: str) -> list[Recorded]:
        conversation = await self._log.stream(conversation_stream(conversation_id))
        return await _history(conversation, self._log.streams)

    async def component(self, digest: str) -> bytes | None:
        packed = await self._log.component(digest)
        if packed is not None or self._components is None:
            return packed
        path = self._components / f"{digest}.wasm"
        return path.read_bytes() if len(digest) == 64 and path.is_file() else None

    async def memory(self, agent: str, replica: int, position: int) -> Memory | None:
        if self._host is None:
            self._host = WasmHost(self._sandbox_cache(), workers=1)
        try:
            return await memory_at(
                self._log, self._host, agent, replica, until=position, fetch=self.component
            )
        except RebuildFailed as exc:
            raise SourceError(f"{agent}#{replica}: its memory cannot be rebuilt: {exc}") from None

    async def memory_plans(self, agent: str) -> list[Plan]:
        return await memory_plans(self._log, agent)

    def _sandbox_cache(self) -> Path:
        """Where the sandbox compiles builds: this user's cache, kept between runs (a
        Python agent's build takes seconds of compiling, once), held by one process at a
        time (a cache cleans up partial files when opened); a directory of its own when
        another process holds it. Only caxton writes there: a data directory's compiled
        files are never read, they may have come from elsewhere."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        shared = base / "caxton" / "replay-components"
        try:
            shared.mkdir(parents=True, exist_ok=True)
            lock = open(shared / ".lock", "w")  # noqa: SIM115  (held until close)
        except OSError:
            lock = None
        if lock is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
            else:
                self._cache_lock = lock
                return shared
        self._scratch = tempfile.TemporaryDirectory(prefix="caxton-memory-")
        return Path(self._scratch.name)

    async def follow(self, after: int) -> AsyncIterator[Recorded]:
        while True:
            async for page in self._log.pages(from_position=after + 1):
                for recorded in page:
                    yield recorded
                    after = recorded.position
            await asyncio.sleep(POLL_S)

    async def everything(self) -> AsyncIterator[Recorded]:
        async for page in self._log.pages():
            for recorded in page:
                yield recorded

    async def close(self) -> None:
        if self._host is not None:
            self._host.close()
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._cache_lock is not None:
            self._cache_lock.close()  # and with it the lock
        await self._log.close()


class ServerSource:
    """A running server's log, through the gRPC API."""

    def __init__(self, client: CaxtonClient) -> None:
        self._client = client
        self.where = f"the server at {client.address}"

    async def history(self, conversation_id: str) -> list[Recorded]:
        conversation = [r async for r in self._client.events(conversation_id=conversation_id)]
        return await _history(conversation, self._streams)

    async def _streams(self, streams: list[str]) -> list[Recorded]:
        return [r async for r in self._client.events(streams=streams)]

    async def component(self, digest: str) -> bytes | None:
        try:
            return await self._client.component(digest)
        except NotFound:
            return None

    async def memory(self, agent: str, replica: int, position: int) -> Memory | None:
        try:
            return await self._client.agent_memory(agent, replica, position)
        except FailedPrecondition as exc:
            if "keeps no memory" in str(exc):
                return None
            raise SourceError(str(exc)) from None
        except NotFound as exc:
            raise SourceError(str(exc)) from None

    async def memory_plans(self, agent: str) -> list[Plan]:
        return await memory_plans(_ClientHistory(self._client), agent)

    async def follow(self, after: int) -> AsyncIterator[Recorded]:
        async for recorded in self._client.events(from_position=after + 1, follow=True):
            yield recorded

    async def everything(self) -> AsyncIterator[Recorded]:
        async for recorded in self._client.events():
            yield recorded

    async def close(self) -> None:
        self._client.close()


class _ClientHistory:
    """A server's log as a memory rebuild reads it (`caxton.shell.runtime.memory.History`),
    through the event stream of the API."""

    PAGE = 1_000

    def __init__(self, client: CaxtonClient) -> None:
        self._client = client

    async def read_streams(
        self, streams: Sequence[str], *, to_position: int | None = None
    ) -> list[Recorded]:
        found = [r async for r in self._client.events(streams=list(streams))]
        return [r for r in found if to_position is None or r.position <= to_position]

    async def pages(
        self, *, from_position: int = 1, to_position: int | None = None
    ) -> AsyncIterator[list[Recorded]]:
        page: list[Recorded] = []
        async for recorded in self._client.events(from_position=from_position):
            if to_position is not None and recorded.position > to_position:
                break
            page.append(recorded)
            if len(page) >= self.PAGE:
                yield page
                page = []
        if page:
            yield page


async def open_source(*, server: Connection | None, log: Path | None) -> Source:
    """`--log PATH` if given, else `--server ADDR` (the default server without either)."""
    if log is not None:
        return await LogSource.open(log)
    return ServerSource((server or Connection()).client())
