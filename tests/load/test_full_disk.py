"""A full disk under a running server: `/ready` says the log refuses appends and that a
restart is needed, nothing acknowledged is lost, a deploy is refused as RESOURCE_EXHAUSTED
without leaving a partial file, and a failing WAL checkpoint is not logged at every try."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from caxton.client import Busy, CaxtonClient, CaxtonError
from caxton.shell.store import EventLog
from tests.disk import fill, sent, small_disk
from tests.e2e.conftest import ServerProcess, caxton
from tests.load.conftest import gap_free, refused_start, sent_ids, until_settled
from tests.support import free_port, wat

pytestmark = [pytest.mark.slow, pytest.mark.load]

PAD = '{"pad": "' + "x" * 20_000 + '"}'


def start_server(data: Path) -> tuple[ServerProcess, str]:
    """A server with its health endpoint on; the server and the `/ready` URL."""
    health = f"127.0.0.1:{free_port()}"
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start("--health", health)
    return server, f"http://{health}/ready"


def stop(server: ServerProcess) -> int:
    """Stops a server with SIGINT, and kills it if that fails (on a full disk it hung)."""
    try:
        return server.stop()
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def ready(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def grpc_health(address: str, *, until: str = "") -> str:
    """The standard gRPC health service's answer for the whole server; with `until`, the
    first answer of a Watch that is `until` (a Check's answer may be a second old)."""
    host, port = address.rsplit(":", 1)
    channel = Channel(host, int(port))
    request = HealthCheckRequest(service="")
    try:
        if not until:
            reply = await HealthStub(channel).Check(request, timeout=30)
            return HealthCheckResponse.ServingStatus.Name(reply.status)
        async with HealthStub(channel).Watch.open(timeout=30) as stream:
            await stream.send_message(request, end=True)
            async for reply in stream:
                status = HealthCheckResponse.ServingStatus.Name(reply.status)
                if status == until:
                    await stream.cancel()  # a Watch never ends by itself
                    return status
        return "(the watch ended)"
    finally:
        channel.close()


def partials(data: Path) -> list[Path]:
    return sorted(data.rglob("*.partial"))


async def test_ready_says_the_log_refuses_appends_on_a_full_disk_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        data = disk / "data"
        server, url = start_server(data)
        acknowledged: set[str] = set()
        try:
            async with CaxtonClient(server.address, timeout=30) as client:
                await client.deploy(wat("silent"), "sink", timeout_ms=20)
                assert ready(url) == (
                    200,
                    {"ready": True, "log": True, "integrity": True, "api": True},
                )
                assert await grpc_health(server.address) == "SERVING"
                filler = fill(disk, leave=400 << 10)
                with pytest.raises(CaxtonError, match="full") as refused:
                    for i in range(1000):
                        sent = await client.send("sink", "inform", PAD, message_id=f"m{i}")
                        acknowledged.add(sent.message_id)
                assert "Traceback" not in str(refused.value)
                assert acknowledged, "the disk was full before the first message"

                status, said = ready(url)
                assert (status, said["ready"], said["log"]) == (503, False, False), said
                assert "disk is full" in str(said["reason"]), said
                assert "restarted" in str(said["reason"]), said
                assert await grpc_health(server.address, until="NOT_SERVING") == "NOT_SERVING"
                # the old code logged a failed WAL checkpoint every ~0.1 s while full
                await asyncio.sleep(3)

                filler.unlink()
                # a failed append leaves agents' handlings unrecorded in memory: the node
                # refuses work until restarted, and /ready keeps saying so
                status, said = ready(url)
                assert status == 503 and "restarted" in str(said["reason"]), said
        finally:
            assert stop(server) == 0
        output = "".join(server.lines)
        checkpoint_warnings = output.count("WAL checkpoint of")
        assert 1 <= checkpoint_warnings <= 3, output[-3000:]
        assert output.count("the event log refuses appends") == 1, output[-3000:]

        again, url = start_server(data)
        try:
            assert ready(url)[0] == 200
            async with CaxtonClient(again.address) as client:
                recorded = await until_settled(client)
                gap_free(recorded)
                missing = acknowledged - set(sent_ids(recorded))
                assert not missing, f"{len(missing)} acknowledged messages are lost"
                await client.send("sink", "inform", "{}")
            assert ready(url)[0] == 200
        finally:
            stop(again)


async def test_a_deploy_on_a_full_disk_is_resource_exhausted_and_leaves_no_partial_file(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        data = disk / "data"
        server, url = start_server(data)
        try:
            filler = fill(disk)
            async with CaxtonClient(server.address, timeout=60) as client:
                with pytest.raises(Busy) as refused:
                    await client.deploy(wat("echo"), "echo", timeout_ms=20)
                said = str(refused.value)
                assert "echo: cannot store the component" in said, said
                assert "no space left" in said and "Errno" not in said, said
                assert partials(data) == []
                assert [a.name for a in await client.agents()] == []

                filler.unlink()  # the log took no append: room again is enough
                await client.deploy(wat("echo"), "echo", timeout_ms=20)
                assert [a.name for a in await client.agents()] == ["echo"]
            assert ready(url)[0] == 200
        finally:
            stop(server)


async def test_partial_files_a_killed_server_left_are_removed_at_start_up(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server, _ = start_server(data)
    server.kill()
    left = [
        data / ".node-id.4242.1.partial",
        data / "components" / f".{'a' * 64}-50.0.1.cwasm.4242.1.partial",
        data / "components" / "components" / f".{'a' * 64}.wasm.4242.1.partial",
    ]
    for partial in left:
        partial.write_bytes(bytes(1 << 20))
    kept = data / "components" / "notes.txt"  # not a partial file: left alone
    kept.write_text("mine")

    server, url = start_server(data)
    try:
        assert partials(data) == []
        assert kept.read_text() == "mine"
        assert ready(url)[0] == 200
    finally:
        stop(server)
    assert "left by a server stopped while writing it" in "".join(server.lines)


def test_a_server_started_on_a_full_disk_says_the_disk_is_full_in_one_line(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        data = disk / "data"
        stop(start_server(data)[0])  # a log, a node id, components: a data directory in use
        filler = fill(disk)
        said = refused_start(data)
        assert "Traceback" not in said and len(said.splitlines()) == 1, said
        assert re.search(r"disk (is )?full", said), said
        assert partials(data) == []

        filler.unlink()
        server, url = start_server(data)
        try:
            assert ready(url)[0] == 200
        finally:
            stop(server)


def test_a_server_stopped_while_the_disk_is_full_stops(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        server, _ = start_server(disk / "data")
        try:
            fill(disk)
        finally:  # its stop cannot be recorded; it hung, its threads never closed
            assert stop(server) == 0
        said = "".join(server.lines)
        assert "the event log refuses appends" in said and "stopped cleanly" in said, said


async def test_an_export_to_a_full_disk_fails_in_words_and_leaves_no_truncated_file(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "events.db"
    log = await EventLog.open(str(log_file))
    try:
        await log.append(sent(60, pad=10_000, conversation="c"))  # about 600 KB
    finally:
        await log.close()
    exports = [("jsonl", ()), ("bundle", ("--conversation", "c"))]
    with small_disk(tmp_path / "disk", "4m") as disk:
        filler = fill(disk, leave=200 << 10)
        for fmt, extra in exports:
            args = ("events", "export", "--log", str(log_file), "--format", fmt, *extra)
            refused = caxton(*args, "-o", str(disk / f"out.{fmt}"), check=False)
            said = (refused.stdout + refused.stderr).strip()
            assert refused.returncode != 0, said
            assert re.search(r"No space left on device|disk is full", said), said
            assert "Traceback" not in said and len(said.splitlines()) == 1, said
            assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # nothing half-written

        # an export that fails over an earlier one leaves the earlier one as it was
        earlier = disk / "earlier.jsonl"
        earlier.write_text("an earlier export\n")
        args = ("events", "export", "--log", str(log_file), "--format", "jsonl")
        assert caxton(*args, "-o", str(earlier), check=False).returncode != 0
        assert earlier.read_text() == "an earlier export\n"
        earlier.unlink()

        filler.unlink()
        for fmt, extra in exports:
            args = ("events", "export", "--log", str(log_file), "--format", fmt, *extra)
            caxton(*args, "-o", str(disk / f"out.{fmt}"))
            assert (disk / f"out.{fmt}").stat().st_size > 500_000
