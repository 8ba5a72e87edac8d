"""A real server's spans: its span process exports them to an OTLP/HTTP receiver on
loopback, ships what is committed when the server stops, even when it is SIGKILLed, and
never outlives it for longer than that."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from caxton.client import CaxtonClient
from caxton.replay.otlp import otlp_json
from caxton.shell.archive.reader import LogFile
from caxton.shell.telemetry.span_process import MODULE
from tests.e2e.conftest import ServerProcess, free_port, write_component
from tests.telemetry.receiver import OtlpReceiver

pytestmark = pytest.mark.slow

ENDED_WITHIN_S = 30.0
"""Far above the span process's 5 s export timeout: only a process that never ends fails."""


def span_process_of(server: int) -> int:
    """The pid of the server's span process (a child running the span follower)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended while we looked
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server and MODULE.encode() in command:
            return int(entry.name)
    raise AssertionError(f"server {server} has no span process")


async def ended(pid: int) -> None:
    """Waits (without polling) until process `pid` has ended."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(handle, done.set_result, None)
    try:
        async with asyncio.timeout(ENDED_WITHIN_S):
            await done
    finally:
        loop.remove_reader(handle)
        os.close(handle)


async def logged_spans(data_dir: Path) -> set[tuple[str, str, str]]:
    """(trace, span, name) of every span the log makes, as `caxton events export` says."""
    async with await LogFile.open(data_dir / "events.db") as log:
        events = [r async for page in log.pages() for r in page]
    spans = json.loads(otlp_json(events))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    return {(s["traceId"], s["spanId"], s["name"]) for s in spans}


def received(receiver: OtlpReceiver) -> set[tuple[str, str, str]]:
    return {(s.trace_id.hex(), s.span_id.hex(), s.name) for s in receiver.spans}


async def served(tmp_path: Path, receiver: OtlpReceiver) -> tuple[ServerProcess, CaxtonClient]:
    """A server exporting to `receiver`, with the `reply` agent deployed as `echo`."""
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}")
    await asyncio.to_thread(server.start, "--traces", "otlp-http", "--otlp-endpoint", receiver.base)
    client = CaxtonClient(server.address)
    await client.deploy(write_component(tmp_path, "reply").read_bytes(), "echo")
    return server, client


async def test_a_server_killed_with_sigkill_has_its_committed_spans_shipped_and_no_orphan(
    tmp_path: Path,
) -> None:
    async with OtlpReceiver() as receiver:
        server, client = await served(tmp_path, receiver)
        process = server.process
        assert process is not None
        try:
            receiver.answering.clear()
            await client.invoke("echo", {"n": 1})
            await receiver.until(1)  # the span process waits for its first export's answer
            follower = span_process_of(process.pid)
            await client.invoke("echo", {"n": 2})  # committed; the span process is held
        finally:
            client.close()
            process.kill()  # SIGKILL: the server neither stops nor flushes anything
            await asyncio.to_thread(process.wait)
        receiver.answering.set()

        await ended(follower)
        await asyncio.to_thread(process.communicate)
        assert received(receiver) == await logged_spans(server.data_dir)


async def test_a_stopped_server_ships_every_span_then_its_span_process_ends(
    tmp_path: Path,
) -> None:
    async with OtlpReceiver() as receiver:
        server, client = await served(tmp_path, receiver)
        assert server.process is not None
        try:
            for n in range(5):
                await client.invoke("echo", {"n": n})
            await receiver.until(1)
            follower = span_process_of(server.process.pid)
        finally:
            client.close()
            status = await asyncio.to_thread(server.stop)  # SIGINT, as Ctrl-C

        assert status == 0 and "✓ stopped cleanly" in "".join(server.lines)
        await ended(follower)
        assert received(receiver) == await logged_spans(server.data_dir)
        assert len(receiver.spans) == len(received(receiver))
