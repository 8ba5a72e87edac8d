"""The last version of recently written streams, bounded; the log answers for the rest.

The writer numbers each event from its stream's last version. Keeping every stream's
would grow with the log (a conversation is a stream: about 150 bytes each, for ever),
so this keeps the `capacity` most recently written, and a batch's other streams are
looked up in the log in one query, where the batch is numbered and committed: on the
loop for an inline backend, in the writer thread otherwise. Batches are numbered one
at a time, after the previous one committed, so what the log says is current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable

RECENT_STREAMS = 4096
"""Streams whose last version is kept: a conversation's are written within seconds,
so a few thousand cover the traffic of any moment; a stream older than that costs one
indexed lookup, shared by its batch, when it is written again."""

Lookup = Callable[[Collection[str]], dict[str, int]]
"""The last version of each of some streams that the log holds (streams it does not
hold are left out: their next version is 1)."""


class RecentVersions:
    """An LRU map of stream to last version, filled from `lookup` on a miss."""

    def __init__(self, lookup: Lookup, *, capacity: int = RECENT_STREAMS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1: {capacity}")
        self._lookup = lookup
        self._capacity = capacity
        self._last: OrderedDict[str, int] = OrderedDict()
        self.lookups = 0
        """How many queries went to the log (for tests and measurements)."""

    def __len__(self) -> int:
        return len(self._last)

    def last(self, streams: Iterable[str]) -> dict[str, int]:
        """The last version of each of `streams` (0 for a new one), one query for all
        those not kept."""
        found: dict[str, int] = {}
        missing: list[str] = []
        last = self._last
        for stream in streams:
            if stream in found:
                continue
            version = last.get(stream)
            if version is None:
                missing.append(stream)
                found[stream] = 0
            else:
                found[stream] = version
        if missing:
            self.lookups += 1
            found.update(self._lookup(missing))
        return found

    def written(self, versions: dict[str, int]) -> None:
        """Records the last versions of a committed batch; the least recently written
        streams beyond the capacity are forgotten."""
        last = self._last
        for stream, version in versions.items():
            last[stream] = version
            last.move_to_end(stream)
        while len(last) > self._capacity:
            last.popitem(last=False)

    def forget(self) -> None:
        """Forgets everything: after a failed batch, the log is asked again."""
        self._last.clear()
