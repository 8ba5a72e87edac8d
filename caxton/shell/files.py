"""Files the server writes whole or not at all: a partial file renamed into place."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

PARTIAL = ".partial"
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_atomically(path: Path, data: bytes) -> None:
    """Writes `path` whole, or raises the OSError and leaves nothing behind: a partial
    file kept on a full disk would keep it full."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{PARTIAL}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def remove_partials(directory: Path) -> list[Path]:
    """Removes the partial files a killed writer left in `directory` (not below it); only
    for a directory no other process writes (one the data directory's lock guards)."""
    removed = []
    for partial in directory.glob(f".*{PARTIAL}"):
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
            removed.append(partial)
    return removed


def is_full(error: OSError) -> bool:
    """The disk (or the user's quota) has no room left."""
    return error.errno in _FULL
