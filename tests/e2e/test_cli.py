"""The `caxton` CLI against a real server subprocess."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO

import psycopg
import pytest

from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component
from tests.store.conftest import POSTGRES_URL, _require_postgres

pytestmark = pytest.mark.slow


def test_deploy_status_send_trace_and_conversations(server: ServerProcess, tmp_path: Path) -> None:
    echo = write_component(tmp_path, "reply")

    deployed = caxton(
        "agent",
        "deploy",
        str(echo),
        "--name",
        "echo",
        "--replicas",
        "3",
        "--capability",
        "echoing",
        server=server.address,
    )
    assert "✓ deployed echo" in deployed.stdout
    status = caxton("agent", "status", "echo", server=server.address)
    assert status.stdout.splitlines()[0] == "✓ Running (3/3 instances healthy)"
    listed = caxton("agent", "list", server=server.address)
    assert re.search(r"echo\s+running\s+3/3\s+echoing", listed.stdout)

    sent = caxton(
        "send",
        "--to",
        "capability:echoing",
        "--performative",
        "request",
        "--content",
        '{"order": 17}',
        "--protocol",
        "fipa-request",
        "--wait",
        "5s",
        server=server.address,
    )
    conversation = re.search(r"conversation (\w+)", sent.stdout)
    assert conversation is not None
    assert "reply inform from echo" in sent.stdout

    trace = caxton("trace", "--conversation-id", conversation.group(1), server=server.address)
    lines = trace.stdout.splitlines()
    assert re.match(
        r'^\[\d\d:\d\d:\d\d\.\d{3}\] agent="client:\w+" message="request" status="sent"', lines[0]
    )
    assert 'agent="echo" message="request" status="received"' in lines[1]
    assert 'agent="echo" message="inform" status="sent"' in lines[2]
    as_json = caxton(
        "trace", "--conversation-id", conversation.group(1), "--json", server=server.address
    )
    assert [json.loads(x)["status"] for x in as_json.stdout.splitlines()][:3] == [
        "sent",
        "received",
        "sent",
    ]

    listing = caxton("conversations", "--last", "1h", server=server.address)
    assert re.search(conversation.group(1) + r"\s+fipa-request\s+done\s+2", listing.stdout)
    as_ops = caxton(
        "send", "--to", "echo", "--sender", "client:ops", "--wait", "5s", server=server.address
    )
    ops_conversation = re.search(r"conversation (\w+)", as_ops.stdout)
    assert ops_conversation is not None
    ops_trace = caxton(
        "trace", "--conversation-id", ops_conversation.group(1), server=server.address
    )
    assert 'agent="client:ops" message="request" status="sent"' in ops_trace.stdout
    newest = caxton("conversations", "--limit", "1", server=server.address)
    assert conversation.group(1) not in newest.stdout
    assert "(the 1 most recently active; narrow with --last or raise --limit)" in newest.stdout

    stopped = caxton("agent", "stop", "echo", server=server.address)
    assert "■ Stopped" in stopped.stdout
    caxton("agent", "remove", "echo", server=server.address)
    assert "no agents deployed" in caxton("agent", "list", server=server.address).stdout
    assert server.stop() == 0
    assert "stopped cleanly" in "".join(server.lines)


def test_a_failing_agent_shows_in_trace_and_status(server: ServerProcess, tmp_path: Path) -> None:
    trapper = write_component(tmp_path, "trap")
    caxton("agent", "deploy", str(trapper), "--name", "trapper", server=server.address)

    sent = caxton(
        "send",
        "--to",
        "trapper",
        "--content",
        "{}",
        "--wait",
        "5s",
        server=server.address,
        check=False,
    )
    assert sent.returncode == 1
    assert "reply failure from caxton" in sent.stdout
    conversation = re.search(r"conversation (\w+)", sent.stdout)
    assert conversation is not None

    trace = caxton("trace", "--conversation-id", conversation.group(1), server=server.address)
    assert (
        'agent="trapper" message="request" status="dead-letter" error="trap: unreachable"'
        in trace.stdout
    )
    status = caxton("agent", "status", "trapper", server=server.address, check=False)
    assert "trap: unreachable" in status.stdout


def test_bad_input_gets_one_clear_line_and_no_traceback(
    server: ServerProcess, tmp_path: Path
) -> None:
    not_wasm = tmp_path / "agent.wasm"
    not_wasm.write_text("hello")
    no_handle = write_component(tmp_path, "no-handle")
    cases = [
        (["agent", "deploy", str(not_wasm), "--name", "x"], "✗ agent.wasm: not a WebAssembly file"),
        (
            ["agent", "deploy", str(no_handle), "--name", "x"],
            "missing export 'handle' (the caxton:agent world requires it)",
        ),
        (["send", "--to", "x", "--performative", "shout"], "✗ unknown performative 'shout'"),
        (["send", "--to", "x", "--content", "{oops"], "✗ --content: not valid JSON"),
        (["agent", "status", "ghost"], "✗ no agent named 'ghost' is deployed"),
        (["agent", "deploy", str(tmp_path / "missing.wasm"), "--name", "x"], "✗ "),
        (["agent", "deploy", str(not_wasm), "--name", "x", "--memory", "lots"], "is not a size"),
        (["send", "--to", "bad name!", "--content", "{}"], "is not an agent name"),
        (["send", "--to", "x", "--sender", "echo"], "callers of the API send as client:<id>"),
    ]
    for args, expected in cases:
        result = caxton(*args, server=server.address, check=False)
        assert result.returncode != 0, args
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout


def test_a_second_server_on_the_same_data_dir_is_refused(server: ServerProcess) -> None:
    second = caxton(
        "server",
        "start",
        "--data-dir",
        str(server.data_dir),
        "--listen",
        f"127.0.0.1:{free_port()}",
        check=False,
    )
    assert second.returncode == 1
    assert "already using" in second.stderr and str(server.data_dir) in second.stderr


def test_a_bad_server_address_is_a_clear_error() -> None:
    for address in ("127.0.0.1:99999", "nohostport"):
        result = caxton("agent", "list", server=address, check=False)
        assert result.returncode == 1
        assert "is not HOST:PORT" in result.stderr
        assert "Traceback" not in result.stderr


def test_no_server_running_is_a_clear_error() -> None:
    result = caxton("agent", "list", server=f"127.0.0.1:{free_port()}", check=False)
    assert result.returncode == 1
    assert "✗ no Caxton server answers at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_token_protected_server_wants_the_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start("--token", "t0k")
    try:
        refused = caxton("agent", "list", server=server.address, check=False)
        assert "✗ missing or wrong token" in refused.stderr
        allowed = caxton("agent", "list", "--token", "t0k", server=server.address)
        assert "no agents deployed" in allowed.stdout
    finally:
        server.stop()


@pytest.mark.postgres
def test_the_server_keeps_its_log_in_postgresql(tmp_path: Path) -> None:
    _require_postgres()
    schema = f"caxton_e2e_{uuid.uuid4().hex[:8]}"
    store = f"{POSTGRES_URL}?schema={schema}"
    echo = write_component(tmp_path, "reply")
    try:
        server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
            "--store", store
        )
        caxton("agent", "deploy", str(echo), "--name", "echo", server=server.address)
        sent = caxton(
            "send", "--to", "echo", "--content", "{}", "--wait", "5s", server=server.address
        )
        assert "reply inform from echo" in sent.stdout
        assert server.stop() == 0

        again = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start("--store", store)
        status = caxton("agent", "status", "echo", server=again.address)
        assert status.stdout.startswith("✓ Running (1/1 instances healthy)")
        assert again.stop() == 0
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_trace_follow_prints_steps_as_they_are_committed(
    server: ServerProcess, tmp_path: Path
) -> None:
    echo = write_component(tmp_path, "reply")
    caxton("agent", "deploy", str(echo), "--name", "echo", server=server.address)
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caxton",
            "trace",
            "--conversation-id",
            "watched",
            "--follow",
            "--server",
            server.address,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        caxton(
            "send",
            "--to",
            "echo",
            "--content",
            "{}",
            "--conversation-id",
            "watched",
            server=server.address,
        )
        assert follower.stdout is not None
        seen = _lines(follower.stdout, 3, timeout=30)
        assert 'message="request" status="sent"' in seen[0]
        assert 'agent="echo" message="request" status="received"' in seen[1]
        assert 'agent="echo" message="inform" status="sent"' in seen[2]
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def _lines(stream: IO[str], count: int, *, timeout: float) -> list[str]:
    """The next `count` lines, failing (not hanging) when they do not come in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(stream.readline()) for _ in range(count)], daemon=True
    ).start()
    try:
        return [lines.get(timeout=timeout) for _ in range(count)]
    except queue.Empty:
        raise AssertionError(f"fewer than {count} lines came within {timeout}s") from None


def test_new_build_deploy_and_ask_a_python_agent(server: ServerProcess, tmp_path: Path) -> None:
    written = caxton(
        "agent", "new", "greeter", "--template", "request-handler", "--dir", str(tmp_path)
    )
    source = tmp_path / "greeter.py"
    assert source.is_file() and "class Greeter(Agent)" in source.read_text()
    assert "✓ wrote" in written.stdout

    built = caxton("agent", "build", str(source))
    assert "✓ built" in built.stdout and (tmp_path / "greeter.wasm").is_file()

    caxton(
        "agent",
        "deploy",
        str(tmp_path / "greeter.wasm"),
        "--name",
        "greeter",
        server=server.address,
    )
    sent = caxton(
        "send",
        "--to",
        "greeter",
        "--content",
        '{"question": "ready?"}',
        "--wait",
        "10s",
        server=server.address,
    )
    assert "reply inform from greeter" in sent.stdout
    assert '"question": "ready?"' in sent.stdout

    again = caxton("agent", "new", "greeter", "--dir", str(tmp_path), check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
