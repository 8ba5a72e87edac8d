"""A full disk or a data directory turned read-only under a running server: it refuses new
work with a clear error, stays up, and loses nothing it acknowledged (checked after a
restart with room again). The data directory is a small tmpfs mounted for the test."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.client import CaxtonClient, CaxtonError
from tests.load.conftest import gap_free, refused_start, sent_ids, start_server, until_settled
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.load]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


async def _fill(address: str, acknowledged: set[str], content: str) -> CaxtonError:
    """Sends until the server refuses; the refusal."""
    async with CaxtonClient(address, timeout=30) as client:
        for i in range(100_000):
            try:
                sent = await client.send("sink", "inform", content, message_id=f"m{i}")
            except CaxtonError as e:
                return e
            acknowledged.add(sent.message_id)
    raise AssertionError("the disk never filled")


async def _acknowledged_survive(data: Path, acknowledged: set[str]) -> None:
    again = start_server(data)
    try:
        async with CaxtonClient(again.address) as client:
            recorded = await until_settled(client)
            gap_free(recorded)
            missing = acknowledged - set(sent_ids(recorded))
            assert not missing, f"{len(missing)} acknowledged messages are lost"
            await client.send("sink", "inform", "{}")  # and it takes new work again
    finally:
        again.stop()


async def test_a_full_disk_is_refused_clearly_and_loses_nothing(small_disk: Path) -> None:
    data = small_disk / "data"
    server = start_server(data)
    acknowledged: set[str] = set()
    try:
        async with CaxtonClient(server.address) as client:
            await client.deploy(wat("silent"), "sink", timeout_ms=20)
        refusal = await _fill(server.address, acknowledged, '{"pad": "' + "x" * 20_000 + '"}')
        assert len(acknowledged) > 10
        assert "full" in str(refusal).lower(), str(refusal)
        assert "\n" not in str(refusal) and "Traceback" not in str(refusal)
        async with CaxtonClient(server.address) as client:  # still up, still refusing
            with pytest.raises(CaxtonError, match=r"(?i)full|restart"):
                await client.send("sink", "inform", "{}")
            assert [a.name for a in await client.agents()] == ["sink"]
        assert server.process is not None and server.process.poll() is None
    finally:
        with contextlib.suppress(Exception):
            server.kill()
    remount(small_disk, "size=64m")
    await _acknowledged_survive(data, acknowledged)


async def test_a_read_only_data_directory_is_refused_clearly_and_loses_nothing(
    small_disk: Path,
) -> None:
    # A file system cannot be made read-only under a server holding files open for
    # writing (remount says busy), so the server meets it at its next start.
    remount(small_disk, "size=64m")
    data = small_disk / "data"
    server = start_server(data)
    acknowledged: set[str] = set()
    try:
        async with CaxtonClient(server.address) as client:
            await client.deploy(wat("silent"), "sink", timeout_ms=20)
            for i in range(50):
                acknowledged.add((await client.send("sink", "inform", {"i": i})).message_id)
    finally:
        server.stop()
    remount(small_disk, "ro")
    said = refused_start(data)
    assert "read-only" in said.lower() or "readonly" in said.lower(), said
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    remount(small_disk, "rw")
    await _acknowledged_survive(data, acknowledged)
