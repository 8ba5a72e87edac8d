"""The span process: follows the event log read-only, builds spans, exports them.

The server starts it (`SpanProcess`) so that its event loop pays nothing per event for
tracing. It reads its `SpanSettings` as the first JSON line on stdin. `{"stop": P}` on a
later line means: ship what is committed up to position P, then end. The end of stdin
without a stop means the server is gone (even SIGKILLed): ship what the log holds then,
and end. Either way it ends within the settings' timeout. It says how far it got on the
pipe `report_fd`, one JSON line at a time: `{"ready": true}` once the log is open,
`{"position": P, "exported": n, "dropped": d}` (counts since the last report, P the last
position whose spans are shipped or dropped) and `{"log": level, "logger": name,
"message": text}` for the server to log.

    python -m caxton.shell.telemetry.span_follower
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from caxton.domain.events import Recorded
from caxton.shell.telemetry.exporter import EXPORT_TIMEOUT_S, SpanShipper, make_exporter

SpanExport = Literal["console", "otlp-grpc", "otlp-http", "discard"]
"""Where the process sends spans: `--traces`, or (for the benchmark) nowhere at all."""

POLL_S = (0.005, 0.2)
"""How long the process waits before it looks at the log again after finding nothing:
the shortest wait right after events (the last of a burst is not left waiting), twice
as long after each look that finds nothing, up to the longest (an idle log costs little)."""

logger = logging.getLogger("caxton.telemetry")

ALARM_GRACE_S = 1
"""How long past its timeout a stopping span process may take before SIGALRM ends it."""

NICENESS = 10
"""How much lower the span process's scheduling priority is than the server's."""

MAX_LAG = 100_000
"""Events the process may fall behind the log (a collector too slow or down) before it
skips ahead, counting each skipped event as a dropped span: spans are late, never
unbounded in how late."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanSettings:
    """What the span process needs to know: where the log is, from where, where to."""

    store: str
    """The SQLite file or the PostgreSQL URL (passed on stdin: it may hold a password)."""
    from_position: int
    traces: SpanExport
    endpoint: str = ""
    sampling: float = 1.0
    node: str = ""
    timeout: float = EXPORT_TIMEOUT_S
    """How long the process has to ship what is committed once it is told to stop."""
    max_lag: int = MAX_LAG
    report_fd: int = -1

    def line(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode() + b"\n"

    @classmethod
    def read(cls, line: bytes) -> SpanSettings:
        return cls(**json.loads(line))


class Followed(Protocol):
    """A log as the span process reads it (`LogFile`, or `EventLog` for PostgreSQL)."""

    def pages(self, *, from_position: int = 1) -> AsyncIterator[list[Recorded]]: ...

    async def last_position(self) -> int: ...

    async def close(self) -> None: ...


class Reports:
    """The span process's side of the report pipe (blocking writes of a line each)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.position = 0
        self._exported = 0
        self._dropped = 0

    def send(self, **fields: object) -> None:
        data = json.dumps(fields).encode() + b"\n"
        with contextlib.suppress(OSError):  # the server is gone: nobody to tell
            while data:
                data = data[os.write(self._fd, data) :]

    def progress(self, position: int, shipper: SpanShipper) -> None:
        exported, dropped = shipper.exported - self._exported, shipper.dropped - self._dropped
        if position == self.position and not exported and not dropped:
            return
        self._exported, self._dropped = shipper.exported, shipper.dropped
        self.position = position
        self.send(position=position, exported=exported, dropped=dropped)


class _Forwarded(logging.Handler):
    """Hands the process's log lines to the server, which logs them as its own."""

    def __init__(self, reports: Reports) -> None:
        super().__init__()
        self._reports = reports

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        self._reports.send(log=record.levelno, logger=record.name, message=message)


class _Discarding(SpanExporter):
    """Takes every span and keeps none: what the benchmark measures is everything before."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


async def open_log(store: str) -> Followed:
    """The log, read-only: a SQLite file through its own read-only connection (WAL readers
    never block the server's writer), PostgreSQL through a second connection."""
    if store.startswith(("postgresql://", "postgres://")):
        from caxton.shell.store import EventLog

        return await EventLog.open(store)
    from pathlib import Path

    from caxton.shell.archive.reader import LogFile

    return await LogFile.open(Path(store))


class Follower:
    """Follows the log from a position, ships each page's spans, stops when told."""

    def __init__(
        self, settings: SpanSettings, log: Followed, shipper: SpanShipper, reports: Reports
    ) -> None:
        self.settings = settings
        self.position = settings.from_position - 1
        self._log = log
        self._shipper = shipper
        self._reports = reports
        self._stop_at: int | None = None
        self._deadline = float("inf")
        self._behind = False

    def stop(self, position: int) -> None:
        """Ships up to `position`, then ends; gives up at the timeout."""
        self._stop_at = position
        self._deadline = time.monotonic() + self.settings.timeout
        _end_by(self.settings.timeout)

    async def run(self) -> None:
        shortest, longest = POLL_S
        wait = shortest
        while not self._done():
            before = self.position
            async for page in self._log.pages(from_position=self.position + 1):
                await self._ship(page)
                await self._keep_up()
                if self._done():
                    break
            if self.position != before:
                wait = shortest
            elif not self._done():
                await asyncio.sleep(wait)
                wait = min(wait * 2, longest)
        self.give_up()

    async def _ship(self, page: list[Recorded]) -> None:
        if self._stop_at is not None:
            page = [r for r in page if r.position <= self._stop_at]
            if not page:
                self.position = self._stop_at
                return
        spans = self._shipper.build(page)
        if spans:
            await asyncio.to_thread(self._shipper.export, spans)
        self.position = page[-1].position
        self._reports.progress(self.position, self._shipper)

    async def _keep_up(self) -> None:
        """Skips ahead when the log has run `max_lag` events ahead: late spans are dropped."""
        last = await self._log.last_position()
        behind = last - self.position
        if behind <= self.settings.max_lag:
            self._behind = self._behind and behind > 0
            return
        skipped = behind - self.settings.max_lag
        if not self._behind:  # once until it has caught up
            logger.warning(
                "the span process is %d events behind the log: dropping the spans of the %d oldest",
                behind,
                skipped,
            )
        self._behind = True
        self._shipper.dropped += skipped
        self.position += skipped
        self._reports.progress(self.position, self._shipper)

    def _done(self) -> bool:
        if self._stop_at is None:
            return False
        return self.position >= self._stop_at or time.monotonic() >= self._deadline

    def give_up(self) -> None:
        """Counts what was not shipped by the deadline as dropped, one span an event."""
        if self._stop_at is not None and self.position < self._stop_at:
            self._shipper.dropped += self._stop_at - self.position
            self.position = self._stop_at
        self._reports.progress(self.position, self._shipper)


def _end_by(seconds: float) -> None:
    """Whatever happens now, the process ends within `seconds` and a little more: SIGALRM's
    default action ends it even if it hangs (on a thread that will not finish, say)."""
    signal.alarm(math.ceil(seconds) + ALARM_GRACE_S)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    control = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(control), os.fdopen(0, "rb", buffering=0)
    )
    line = await control.readline()
    if not line:
        return  # the server went before it said anything
    settings = SpanSettings.read(line)
    reports = Reports(settings.report_fd)
    root = logging.getLogger()
    root.addHandler(_Forwarded(reports))
    root.setLevel(logging.INFO)
    try:
        log = await open_log(settings.store)
    except Exception as exc:  # said in the server's log; the server starts it again later
        logger.error("the span process cannot read the log: %s", exc)
        raise SystemExit(1) from None
    exporter = (
        _Discarding()
        if settings.traces == "discard"
        else make_exporter(settings.traces, settings.endpoint)
    )
    assert exporter is not None
    shipper = SpanShipper(exporter, sampling=settings.sampling, node=settings.node)
    follower = Follower(settings, log, shipper, reports)
    try:
        await _follow(follower, control, log, reports)
    finally:  # the reader's thread would keep the process alive
        shipper.shutdown()
        await log.close()


async def _follow(
    follower: Follower, control: asyncio.StreamReader, log: Followed, reports: Reports
) -> None:
    loop = asyncio.get_running_loop()
    reports.send(ready=True)
    following = loop.create_task(follower.run())
    stopped = loop.create_task(_until_stopped(control, follower, log))
    await asyncio.wait((following, stopped), return_when=asyncio.FIRST_COMPLETED)
    if not stopped.done():  # following ended before any stop: it failed
        stopped.cancel()
        error = following.exception()
        logger.error("the span process stopped following the log", exc_info=error)
        _end_by(0)
        raise SystemExit(1)
    try:
        async with asyncio.timeout(follower.settings.timeout):
            await following
    except TimeoutError:
        # an export still waits for its collector in a worker thread: do not wait for it
        follower.give_up()
        sys.stdout.flush()
        os._exit(0)


async def _until_stopped(control: asyncio.StreamReader, follower: Follower, log: Followed) -> None:
    """Waits for `{"stop": P}` (P null: the log's end), or for the end of stdin (the
    server is gone: the log's end too)."""
    while line := await control.readline():
        said: dict[str, Any] = json.loads(line)
        if "stop" in said:
            stop = said["stop"]
            follower.stop(stop if isinstance(stop, int) else await log.last_position())
            return
    follower.stop(await log.last_position())


def main() -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole group: the server says when
    # to stop, after its last commit, and the end of stdin says it is gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # on a busy machine the server's loop goes first: spans fall behind, handling does not
    os.nice(NICENESS)
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
