"""The span process: a real node commits, a child process follows its log (SQLite, or
PostgreSQL) and exports to a real OTLP/HTTP receiver on loopback; it is killed, restarted,
stopped, and left without a collector."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from caxton.replay.otlp import otlp_json
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.span_follower import SpanExport, SpanSettings
from caxton.shell.telemetry.span_process import MODULE, RESTART_AFTER_S, SpanProcess
from caxton.shell.wasm import WasmHost
from tests.support import free_port, wat
from tests.telemetry.receiver import OtlpReceiver
from tests.telemetry.test_exporter import BIDDERS, run_conversation

POSTGRES_URL = os.environ.get("CAXTON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def started(store: str, tmp_path: Path) -> Node:
    log = await EventLog.open(store)
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="node-traces")
    await node.start()
    for name in BIDDERS:
        await node.deploy(DeploySpec(name=name, component=wat("reply"), capabilities=("bidding",)))
    return node


async def stopped(node: Node) -> None:
    await node.shutdown()
    await node.log.close()
    node.host.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    running = await started(str(tmp_path / "events.db"), tmp_path)
    try:
        yield running
    finally:
        await stopped(running)


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver() as running:
        yield running


def span_process(
    node: Node,
    store: str,
    endpoint: str,
    *,
    traces: SpanExport = "otlp-http",
    timeout: float = 5.0,
    max_lag: int = 100_000,
) -> SpanProcess:
    settings = SpanSettings(
        store=store,
        from_position=node.world.position + 1,
        traces=traces,
        endpoint=endpoint,
        node="node-traces",
        timeout=timeout,
        max_lag=max_lag,
    )
    return SpanProcess(settings)


async def later_export(node: Node, first: int) -> set[tuple[str, str, str, str]]:
    """What `caxton events export --format otlp-json` says of the log from `first`."""
    later = json.loads(otlp_json(await node.log.read(from_position=first)))
    return {
        (s["traceId"], s["spanId"], s.get("parentSpanId", ""), s["name"])
        for s in later["resourceSpans"][0]["scopeSpans"][0]["spans"]
    }


def received(receiver: OtlpReceiver) -> set[tuple[str, str, str, str]]:
    return {
        (s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name) for s in receiver.spans
    }


async def test_the_span_process_exports_what_the_node_commits_with_the_ids_of_a_later_export(
    node: Node, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    first = node.world.position + 1
    spans = span_process(node, str(tmp_path / "events.db"), receiver.base)
    spans.start()

    await run_conversation(node)
    await spans.flush(node.world.position)
    await spans.close(node.world.position)

    assert received(receiver) == await later_export(node, first)
    assert spans.exported == len(receiver.spans) > 0 and spans.dropped == 0


async def test_nothing_committed_before_its_start_position_gets_a_span(
    node: Node, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    before = await run_conversation(node)
    spans = span_process(node, str(tmp_path / "events.db"), receiver.base)
    spans.start()

    after = await run_conversation(node)
    await spans.close(node.world.position)

    conversations = {
        a.value.string_value
        for s in receiver.spans
        for a in s.attributes
        if a.key == "messaging.message.conversation_id"
    }
    assert conversations == {after} and before != after


async def test_a_span_process_that_dies_is_started_again_from_where_it_was_and_loses_no_span(
    node: Node, receiver: OtlpReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = node.world.position + 1
    spans = span_process(node, str(tmp_path / "events.db"), receiver.base)
    spans.start()
    await run_conversation(node)
    await spans.flush(node.world.position)
    shipped = spans.position
    assert spans.pid is not None
    dead = spans.pid

    os.kill(dead, signal.SIGKILL)
    await run_conversation(node)  # committed while no span process runs
    await spans.flush(node.world.position)
    await spans.close(node.world.position)

    assert spans.restarts == 1 and spans.pid != dead
    assert received(receiver) == await later_export(node, first)
    assert len(receiver.spans) == len(received(receiver))  # none shipped twice
    warnings = [r.getMessage() for r in caplog.records if r.name == "caxton.telemetry"]
    assert warnings == [
        f"the span process ended (signal 9); starting it again in {RESTART_AFTER_S[0]:g} s "
        f"from position {shipped + 1}"
    ]


async def test_at_close_the_span_process_ships_what_is_committed_then_ends(
    node: Node, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    first = node.world.position + 1
    spans = span_process(node, str(tmp_path / "events.db"), receiver.base)
    spans.start()

    await run_conversation(node)
    await spans.close(node.world.position)  # no flush first: the close ships

    assert received(receiver) == await later_export(node, first)
    assert spans.pid is not None and not _alive(spans.pid)


async def test_with_no_collector_the_span_process_ends_within_its_timeout_and_counts_the_loss(
    node: Node, tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # gRPC retries until its 5 s timeout
    spans = span_process(
        node, str(tmp_path / "events.db"), nowhere, traces="otlp-grpc", timeout=1.0
    )
    spans.start()
    await spans.ready()

    for _ in range(5):
        await run_conversation(node)  # handling goes on: nothing waits for the collector
    await spans.close(node.world.position)

    assert spans.exported == 0 and spans.dropped > 0
    assert spans.position == node.world.position
    assert spans.pid is not None and not _alive(spans.pid)


async def test_what_the_span_process_says_is_said_in_the_servers_log(
    node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    spans = span_process(node, str(tmp_path / "events.db"), url)
    spans.start()

    await run_conversation(node)
    await spans.close(node.world.position)

    (warning,) = [r for r in caplog.records if r.name == "caxton.telemetry"]
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith(f"span export to {url} failed: cannot connect (")
    assert spans.exported == 0 and spans.dropped > 0


async def test_a_span_process_too_far_behind_the_log_skips_ahead_and_counts_what_it_skipped(
    node: Node, receiver: OtlpReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spans = span_process(node, str(tmp_path / "events.db"), receiver.base, max_lag=5)
    receiver.answering.clear()
    spans.start()
    await run_conversation(node)
    await receiver.until(1)  # the span process waits for its first export's answer

    for _ in range(3):
        await run_conversation(node)  # the log runs more than 5 events ahead
    receiver.answering.set()
    await spans.close(node.world.position)

    assert spans.dropped > 0 and spans.exported == len(receiver.spans) > 0
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "caxton.telemetry"]
    assert "events behind the log: dropping the spans of the" in warning


def test_a_span_process_that_cannot_read_the_log_says_why_and_ends(tmp_path: Path) -> None:
    store = tmp_path / "events.db"
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute(
            "CREATE TABLE stored_events "
            "(originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB)"
        )
        db.execute("INSERT INTO stored_events VALUES ('conversation:c', 1, 'MessageSent', 'x')")
    read, write = os.pipe()
    settings = SpanSettings(store=str(store), from_position=1, traces="discard", report_fd=write)
    with subprocess.Popen(
        [sys.executable, "-m", MODULE], stdin=subprocess.PIPE, pass_fds=(write,)
    ) as process:
        os.close(write)
        assert process.stdin is not None
        process.stdin.write(settings.line())
        process.stdin.flush()  # and kept open: the server is still there
        try:
            status = process.wait(timeout=60)  # a few lines of reports fit in the pipe
        except subprocess.TimeoutExpired:
            process.kill()  # it hangs: no orphan left behind by a failing test
            raise
    with os.fdopen(read) as reports:
        said = [json.loads(line) for line in reports]

    assert status == 1  # for the server to start it again
    (error,) = [r for r in said if "log" in r]
    assert error["message"].startswith("the span process stopped following the log")
    assert "LogCorrupted" in error["message"]


@pytest.mark.postgres
async def test_the_span_process_follows_a_postgresql_log(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_URL}: {exc}")
    schema = f"caxton_test_{uuid.uuid4().hex[:12]}"
    store = f"{POSTGRES_URL}?schema={schema}"
    node = await started(store, tmp_path)
    try:
        first = node.world.position + 1
        spans = span_process(node, store, receiver.base)
        spans.start()
        await run_conversation(node)
        await spans.close(node.world.position)

        assert received(receiver) == await later_export(node, first)
    finally:
        await stopped(node)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _alive(pid: int) -> bool:
    """Whether a process of that pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
