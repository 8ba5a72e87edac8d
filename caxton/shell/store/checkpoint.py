"""WAL checkpoints in a thread of their own, so that commits on the loop never carry them.

SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages: that
commit takes 4–14 ms instead of ~40 µs, and on the event loop it is every request's p99.
With automatic checkpoints off on the writer, this thread runs a PASSIVE checkpoint
(it waits for no reader or writer) every `interval` seconds on its own connection;
sqlite3 releases the GIL while it works, so it runs beside the loop. A failing checkpoint
(a full disk: the database file cannot grow) is tried again less and less often, up to
every `max_interval` seconds, and logged as it starts and stops failing, not each time.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger("caxton.store")


class WalCheckpointer:
    def __init__(self, where: str, *, interval: float = 0.1, max_interval: float = 5.0) -> None:
        self._where = where
        self._interval = interval
        self._max_interval = max_interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caxton-wal-checkpoint", daemon=True)
        self.ran = threading.Event()
        """Set after each checkpoint (for tests)."""
        self.failures = 0
        """Checkpoints failed in a row."""
        self.failed = threading.Event()
        """Set after each failed checkpoint (for tests)."""
        self._failing_with = ""

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._where, check_same_thread=False)
        try:
            while not self._stopping.wait(self._next_wait()):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:  # busy or failing: the next round tries again
                    self._failed(e)
                else:
                    self._succeeded()
        finally:
            connection.close()

    def _next_wait(self) -> float:
        """The interval, doubled for each failure in a row up to `max_interval`."""
        backoff: float = self._interval * 2.0 ** min(self.failures, 32)
        return min(backoff, self._max_interval)

    def _failed(self, error: sqlite3.Error) -> None:
        if str(error) != self._failing_with:  # a new state: it failed, or fails otherwise
            self._failing_with = str(error)
            logger.warning(
                "WAL checkpoint of %s failed: %s; trying again less often (up to every %g s) "
                "until it works",
                self._where,
                error,
                self._max_interval,
            )
        self.failures += 1
        self.failed.set()

    def _succeeded(self) -> None:
        if self.failures:
            logger.warning(
                "WAL checkpoint of %s works again, after %d failures", self._where, self.failures
            )
            self.failures = 0
            self._failing_with = ""
        self.ran.set()
