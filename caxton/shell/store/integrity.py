"""The start-up integrity check: one pass over the log in position order."""

from __future__ import annotations

from dataclasses import dataclass

from caxton.domain.events import stream_of
from caxton.shell.store.envelope import Row, recorded
from caxton.shell.store.errors import LogCorrupted


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What a passing check saw."""

    events: int
    streams: int
    last_position: int


class IntegrityCheck:
    """Folds rows in position order and raises `LogCorrupted` at the first broken rule:
    positions run 1..N without gaps, each stream's versions run 1..n in log order, and
    every payload decodes into an event of its stored type and stream."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._position = 0
        self._versions: dict[str, int] = {}

    def feed(self, row: Row) -> None:
        where = self._where
        if row.position != self._position + 1:
            reason = f"expected position {self._position + 1} next, found {row.position} (a gap)"
            raise LogCorrupted(where, reason, position=row.position, stream=row.stream)
        expected = self._versions.get(row.stream, 0) + 1
        if row.version != expected:
            reason = f"expected version {expected} of the stream, found {row.version}"
            raise LogCorrupted(where, reason, position=row.position, stream=row.stream)
        event = recorded(row, where).event
        if stream_of(event) != row.stream:
            reason = f"a {row.topic} of stream {stream_of(event)!r} is stored in another stream"
            raise LogCorrupted(where, reason, position=row.position, stream=row.stream)
        self._position = row.position
        self._versions[row.stream] = row.version

    def report(self, last_position: int) -> IntegrityReport:
        """The summary; `last_position` is the database's own maximum, checked against the scan."""
        if last_position != self._position:
            reason = (
                f"the scan ended at {self._position} but the maximum position is {last_position}"
            )
            raise LogCorrupted(self._where, reason, position=last_position)
        return IntegrityReport(
            events=self._position, streams=len(self._versions), last_position=self._position
        )
