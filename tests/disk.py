"""A full disk for fault tests: a small tmpfs (mounting needs root), a file that fills it,
and big events to fill it with."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from caxton.domain.events import MessageSent
from caxton.shell.store import Pending
from tests.samples import message


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (`4m`) mounted at `where` for the block; skips if it cannot be."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            "a full disk is a small tmpfs, which only root can mount: "
            f"{mounted.stderr.strip() or mounted.returncode}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, *, leave: int = 0) -> Path:
    """Writes a filler file until not one more byte fits on `disk`, then gives `leave`
    bytes back; the filler (delete it to make room)."""
    filler = disk / "filler"
    with filler.open("ab", buffering=0) as f:
        try:
            while True:
                f.write(bytes(1 << 16))  # a short write near the end, then ENOSPC
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    if leave:
        os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


def sent(count: int, *, pad: int, start: int = 0, conversation: str = "") -> list[Pending]:
    """`count` messages of about `pad` bytes each, in `conversation` (else one each)."""
    return [
        Pending(
            event=MessageSent(
                message=dataclasses.replace(
                    message(conversation or f"c{i}", i), content=f'{{"pad": "{"x" * pad}"}}'
                ),
                deliveries=("echo#0",),
            ),
            at=1,
        )
        for i in range(start, start + count)
    ]
