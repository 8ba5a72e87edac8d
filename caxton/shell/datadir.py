"""The data directory: one server at a time (an OS lock), and the node's stable id."""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from types import TracebackType

from caxton.shell.files import remove_partials, write_atomically


class DataDirBusy(Exception):
    """Another server holds the data directory."""


class DataDirUnusable(Exception):
    """The data directory cannot be created or written."""


class DataDir:
    """Holds an exclusive lock on `<dir>/caxton.lock` for the server's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> DataDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "caxton.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataDirUnusable(
                f"{self.path}: cannot use as data directory ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirBusy(
                f"another Caxton server (pid {holder}) is already using {self.path}; "
                "stop it first or pass a different --data-dir"
            ) from None
        try:  # the pid is for the message above; a disk with no room for it has none to run
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            remove_partials(self.path)  # the lock is ours: any partial file is a leftover
        except OSError as exc:
            os.close(fd)
            raise DataDirUnusable(
                f"{self.path}: cannot use as data directory ({exc.strerror})"
            ) from None
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def components(self) -> Path:
        return self.path / "components"

    def node_id(self) -> str:
        """A stable id for this node, made once and kept in the data directory."""
        path = self.path / "node-id"
        try:
            kept = path.read_text().strip()
        except FileNotFoundError:
            kept = ""
        if kept:  # an empty file is what a full disk left before ids were written whole
            return kept
        node = "node-" + uuid.uuid4().hex[:8]
        try:
            write_atomically(path, (node + "\n").encode())
        except OSError as exc:
            raise DataDirUnusable(f"{path}: cannot write the node id ({exc.strerror})") from None
        return node
