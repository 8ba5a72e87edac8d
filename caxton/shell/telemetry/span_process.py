"""The span process as the server sees it: started with the log's location and a position,
started again with a back-off when it dies, told at the end to ship what is committed.

The server's event loop only reads the process's reports (a line every export batch):
building and exporting spans happen in the process (`span_follower`), on another core.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from caxton.shell.store.backend import TABLE
from caxton.shell.store.postgres import parse_url
from caxton.shell.telemetry.span_follower import SpanSettings

logger = logging.getLogger("caxton.telemetry")

MODULE = "caxton.shell.telemetry.span_follower"
RESTART_AFTER_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits before starting a dead span process again: longer while it keeps dying."""
KILL_AFTER_S = 2.0
"""How long past its own timeout a stopping span process gets before it is killed."""


def committed_position(store: str) -> int:
    """The log's last committed position now, read at once (blocking, at start-up): where
    the spans of a server that has not committed anything yet begin."""
    if store.startswith(("postgresql://", "postgres://")):
        target = parse_url(store)
        query = sql.SQL("SELECT MAX(notification_id) FROM {}.{}").format(
            sql.Identifier(target.schema), sql.Identifier(TABLE)
        )
        with psycopg.connect(target.conninfo) as connection:
            found = connection.execute(query).fetchone()
    else:
        uri = Path(store).absolute().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            found = db.execute(f"SELECT MAX(rowid) FROM {TABLE}").fetchone()
    return int(found[0] or 0) if found else 0


class SpanProcess:
    """One span process at a time, following the log from `from_position` on.

    `position` is the last log position whose spans are shipped (or dropped and counted);
    a process started again goes on from there, so a death loses no span."""

    def __init__(
        self,
        settings: SpanSettings,
        *,
        on_exported: Callable[[int], object] | None = None,
        on_dropped: Callable[[int], object] | None = None,
    ) -> None:
        self.settings = settings
        self.position = settings.from_position - 1
        self.exported = 0
        self.dropped = 0
        self.restarts = 0
        self.pid: int | None = None
        self._on_exported = on_exported
        self._on_dropped = on_dropped
        self._process: asyncio.subprocess.Process | None = None
        self._running: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._progress = asyncio.Condition()
        self._stopping = False

    def start(self, from_position: int | None = None) -> None:
        """Starts the process (it comes up in its own time; nothing waits for it), from
        `from_position` if given, else from the settings' position."""
        if from_position is not None:
            self.position = from_position - 1
        self._running = asyncio.get_running_loop().create_task(
            self._keep_running(), name="caxton-span-process"
        )

    async def ready(self) -> None:
        """Waits until the process has the log open."""
        await self._ready.wait()

    async def flush(self, position: int) -> None:
        """Waits until the spans of the events up to `position` are shipped (or dropped)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.position >= position)

    async def close(self, position: int | None = None) -> None:
        """Ships what is committed up to `position` (the log's end if None) within the
        settings' timeout, then ends the process; what it did not ship is counted dropped,
        a span per event."""
        self._stopping = True
        running, process = self._running, self._process
        if running is None:
            return
        if process is None or process.returncode is not None:
            running.cancel()  # waiting to start it again: too late now
        else:
            await self._tell(process, {"stop": position})
        try:
            async with asyncio.timeout(self.settings.timeout + KILL_AFTER_S):
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        except TimeoutError:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if position is not None and position > self.position:
            self._count(0, position - self.position)
            self.position = position

    async def _keep_running(self) -> None:
        failures = 0
        while not self._stopping:
            progress = self.position
            status = await self._run()
            if self._stopping:
                return
            failures = 0 if self.position > progress else failures + 1
            wait = RESTART_AFTER_S[min(failures, len(RESTART_AFTER_S) - 1)]
            logger.warning(
                "the span process ended (%s); starting it again in %g s from position %d",
                status,
                wait,
                self.position + 1,
            )
            self.restarts += 1
            await asyncio.sleep(wait)

    async def _run(self) -> str:
        """Runs one process until it ends; says how it ended."""
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                MODULE,
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except OSError as exc:
            os.close(read_fd)
            return f"it could not start: {exc.strerror or exc}"
        finally:
            os.close(write_fd)
        self._process, self.pid = process, process.pid
        settings = dataclasses.replace(
            self.settings, from_position=self.position + 1, report_fd=write_fd
        )
        await self._tell(process, settings)
        reports = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reports), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            while line := await reports.readline():
                await self._read(json.loads(line))
        finally:
            transport.close()
        status = await process.wait()
        return f"exit status {status}" if status >= 0 else f"signal {-status}"

    async def _tell(self, process: asyncio.subprocess.Process, what: object) -> None:
        assert process.stdin is not None
        line = what.line() if isinstance(what, SpanSettings) else json.dumps(what).encode() + b"\n"
        with contextlib.suppress(ConnectionError):  # it died: its end is read elsewhere
            process.stdin.write(line)
            await process.stdin.drain()

    async def _read(self, report: dict[str, object]) -> None:
        match report:
            case {"position": int(position), "exported": int(exported), "dropped": int(dropped)}:
                self._count(exported, dropped)
                async with self._progress:
                    self.position = max(self.position, position)
                    self._progress.notify_all()
            case {"log": int(level), "logger": str(name), "message": str(message)}:
                logging.getLogger(name).log(level, "%s", message)
            case {"ready": True}:
                self._ready.set()

    def _count(self, exported: int, dropped: int) -> None:
        self.exported += exported
        self.dropped += dropped
        if exported and self._on_exported is not None:
            self._on_exported(exported)
        if dropped and self._on_dropped is not None:
            self._on_dropped(dropped)
