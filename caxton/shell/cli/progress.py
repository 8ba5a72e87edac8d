"""Progress of long steps (build, compile, deploy): a spinner per named stage, a bar for
many like items (conversations re-executed), or log lines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

HEARTBEAT_S = 30.0
"""How often a log (not a terminal) hears that a stage still runs."""


@dataclass
class Stage:
    """One subject's step in progress (`manager`, `building with componentize-py`)."""

    subject: str
    doing: str
    started: float = field(default_factory=time.monotonic)
    outcome: str = ""
    task: TaskID | None = None
    beats: int = 0
    """How many heartbeats have been said of it."""

    def done(self, outcome: str) -> None:
        """The words shown when it ends (`built in 21.3 s`) instead of a bare `done`."""
        self.outcome = outcome

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def beat_due(self, heartbeat_s: float) -> bool:
        """Whether another `heartbeat_s` of its own has passed since it was last said to
        run (each stage every `heartbeat_s` of its own, not all at one clock's tick)."""
        due = int(self.elapsed() // heartbeat_s)
        if due <= self.beats:
            return False
        self.beats = due
        return True

    def __str__(self) -> str:
        return f"{self.subject}: {self.doing} ({self.elapsed():.0f} s)"


class _Shown:
    """What `Stages` and `Tally` share: a rich display on a terminal, else a thread that
    writes a heartbeat line now and then (`_beat`, each its own), both stopped at the end."""

    def __init__(self, console: Console, heartbeat_s: float) -> None:
        self._console = console
        self._heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._display: Progress | None = None
        self._heartbeat: threading.Thread | None = None

    def _show(self, display: Progress | None) -> None:
        """Starts `display` (on a terminal), or else the heartbeat thread."""
        self._display = display
        if display is not None:
            display.start()
        else:
            self._heartbeat = threading.Thread(
                target=self._beat, name="caxton-progress", daemon=True
            )
            self._heartbeat.start()

    def _hide(self) -> None:
        self._stopped.set()
        if self._display is not None:
            self._display.stop()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def _beat(self) -> None:
        raise NotImplementedError

    def _line(self, text: str) -> None:
        self._console.print(f"  {text}", markup=False, highlight=False)


class Stages(_Shown):
    """Stages that may run at once, shown while they run so that a slow step is never silent.

    On a terminal: a rich display with a spinner, the stage's words and its elapsed time per
    row. Elsewhere (a pipe, a CI log): a line when a stage starts, one every `heartbeat_s`
    while it runs, and one when it ends. `running()` names what has not finished, for the
    message of a failure or a timeout. Stages may start and end in other threads.
    """

    def __init__(self, console: Console, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        super().__init__(console, heartbeat_s)
        self._running: list[Stage] = []

    def __enter__(self) -> Stages:
        columns = (_Mark(), TextColumn("{task.description}"), TimeElapsedColumn())
        terminal = self._console.is_terminal
        self._show(Progress(*columns, console=self._console) if terminal else None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hide()

    @contextmanager
    def stage(self, subject: str, doing: str) -> Iterator[Stage]:
        """Shows `subject: doing` until the block ends, then its outcome (or `failed`)."""
        stage = Stage(subject, doing)
        with self._lock:
            self._running.append(stage)
        if self._display is not None:
            stage.task = self._display.add_task(_row(subject, doing), total=1, mark="")
        else:
            self._line(f"{subject}: {doing} …")
        try:
            yield stage
        except BaseException:
            self._end(stage, "[red]✗[/red]", f"failed after {stage.elapsed():.1f} s")
            raise
        self._end(stage, "[green]✓[/green]", stage.outcome or f"done in {stage.elapsed():.1f} s")

    def running(self) -> str:
        """What has not finished yet, `manager: compiling (41 s), …`, or ``."""
        with self._lock:
            return ", ".join(map(str, self._running))

    def _end(self, stage: Stage, mark: str, outcome: str) -> None:
        with self._lock:
            self._running.remove(stage)
        if self._display is not None and stage.task is not None:
            row = _row(stage.subject, outcome)
            self._display.update(stage.task, description=row, completed=1, mark=mark)
        else:
            self._line(f"{stage.subject}: {outcome}")

    def _beat(self) -> None:
        while not self._stopped.wait(min(1.0, self._heartbeat_s)):
            with self._lock:
                due = [stage for stage in self._running if stage.beat_due(self._heartbeat_s)]
            for stage in due:
                self._line(f"{stage.subject}: still {stage.doing}, {stage.elapsed():.0f} s so far")


class Tally(_Shown):
    """Progress through `total` like items (`re-executing bidder-b`, 12/40 conversations).

    On a terminal: a bar with the count done and the elapsed time. Elsewhere: a line when
    it starts, one every `heartbeat_s` while it runs, and one when it ends. `advance()`
    may be called from any thread."""

    def __init__(
        self,
        console: Console,
        doing: str,
        total: int,
        *,
        unit: str = "",
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        super().__init__(console, heartbeat_s)
        self._doing = doing
        self._total = total
        self._unit = unit
        self._done = 0
        self._started = time.monotonic()
        self._task: TaskID | None = None

    @property
    def done(self) -> int:
        with self._lock:
            return self._done

    def __enter__(self) -> Tally:
        self._started = time.monotonic()
        display = None
        if self._console.is_terminal:
            display = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(escape(self._unit)),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._task = display.add_task(escape(self._doing), total=self._total)
        else:
            self._line(f"{self._doing}: 0/{self._total} {self._unit} …")
        self._show(display)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hide()
        if self._heartbeat is not None:
            how = "failed after" if exc_type is not None else "in"
            self._line(f"{self._doing}: {self._count()} {how} {self._elapsed():.1f} s")

    def advance(self) -> None:
        """One more item done."""
        with self._lock:
            self._done += 1
        if self._display is not None and self._task is not None:
            self._display.advance(self._task)

    def _beat(self) -> None:
        beats = 0
        while not self._stopped.wait(min(1.0, self._heartbeat_s)):
            due = int(self._elapsed() // self._heartbeat_s)
            if due > beats:
                beats = due
                so_far = f"{self._elapsed():.0f} s so far"
                self._line(f"{self._doing}: still running, {self._count()}, {so_far}")

    def _count(self) -> str:
        return f"{self.done}/{self._total} {self._unit}".rstrip()

    def _elapsed(self) -> float:
        return time.monotonic() - self._started


class _Mark(SpinnerColumn):
    """A spinner while the stage runs, then its mark: ✓ or ✗."""

    def render(self, task: Task) -> RenderableType:
        if task.finished:
            return Text.from_markup(task.fields.get("mark", ""))
        return super().render(task)


def _row(subject: str, text: str) -> str:
    return f"{escape(subject):<16} {escape(text)}"
