"""WAL checkpoints in a thread of their own, so that commits on the loop never carry them.

SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages: that
commit takes 4–14 ms instead of ~40 µs, and on the event loop it is every request's p99.
With automatic checkpoints off on the writer, this thread runs a PASSIVE checkpoint
(it waits for no reader or writer) every `interval` seconds on its own connection;
sqlite3 releases the GIL while it works, so it runs beside the loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger("caxton.store")


class WalCheckpointer:
    def __init__(self, where: str, *, interval: float = 0.1) -> None:
        self._where = where
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caxton-wal-checkpoint", daemon=True)
        self.ran = threading.Event()
        """Set after each checkpoint (for tests)."""

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
            while not self._stopping.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.ran.set()
                except sqlite3.Error as e:  # busy or failing: the next round tries again
                    logger.warning("WAL checkpoint of %s failed: %s", self._where, e)
        finally:
            connection.close()
