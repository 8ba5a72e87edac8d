"""Progress of long steps (build, compile, deploy): a spinner per named stage, or log lines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, Task, TaskID, TextColumn, TimeElapsedColumn
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


class Stages:
    """Stages that may run at once, shown while they run so that a slow step is never silent.

    On a terminal: a rich display with a spinner, the stage's words and its elapsed time per
    row. Elsewhere (a pipe, a CI log): a line when a stage starts, one every `heartbeat_s`
    while it runs, and one when it ends. `running()` names what has not finished, for the
    message of a failure or a timeout. Stages may start and end in other threads.
    """

    def __init__(self, console: Console, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self._console = console
        self._heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._running: list[Stage] = []
        self._stopped = threading.Event()
        self._display: Progress | None = None
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> Stages:
        if self._console.is_terminal:
            self._display = Progress(
                _Mark(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._display.start()
        else:
            self._heartbeat = threading.Thread(
                target=self._beat, name="caxton-progress", daemon=True
            )
            self._heartbeat.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        if self._display is not None:
            self._display.stop()
        if self._heartbeat is not None:
            self._heartbeat.join()

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

    def _line(self, text: str) -> None:
        self._console.print(f"  {text}", markup=False, highlight=False)


class _Mark(SpinnerColumn):
    """A spinner while the stage runs, then its mark: ✓ or ✗."""

    def render(self, task: Task) -> RenderableType:
        if task.finished:
            return Text.from_markup(task.fields.get("mark", ""))
        return super().render(task)


def _row(subject: str, text: str) -> str:
    return f"{escape(subject):<16} {escape(text)}"
