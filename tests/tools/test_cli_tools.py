"""`caxton tools list|call`, `agent deploy --tools` and `caxton trace` against a server
subprocess with real MCP servers: mcp-server-sqlite and mcp-server-time from PyPI over
stdio, and tests/tools/toybox.py over stdio and over streamable HTTP on loopback."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, caxton, free_port
from tests.support import wat
from tests.tools.conftest import ROOT, registry_server

pytestmark = pytest.mark.slow


def caxton_toml(tmp_path: Path, web_url: str) -> Path:
    path = tmp_path / "caxton.toml"
    path.write_text(
        f"""
[tools.db]
command = "{registry_server("sqlite")}"
args = ["--db-path", "{tmp_path / "shop.db"}"]

[tools.time]
command = "{registry_server("time")}"
timeout = "10s"

[tools.toy]
command = "{sys.executable}"
args = ["-m", "tests.tools.toybox"]
env = {{ PYTHONPATH = "{ROOT}" }}
timeout = "400ms"
breaker_threshold = 2
breaker_reset = "5s"
max_result_bytes = "2KiB"

[tools.web]
url = "{web_url}"
"""
    )
    return path


@pytest.fixture
def tool_server(tmp_path: Path, http_toybox: str) -> Iterator[ServerProcess]:
    config = caxton_toml(tmp_path, http_toybox)
    running = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}")
    running.start("--config", str(config), "--log-level", "INFO")
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.kill()


def deploy_caller(
    server: ServerProcess, tmp_path: Path, name: str, tool: str, args: object, grants: str
) -> None:
    component = tmp_path / "tool-caller.wasm"
    component.write_bytes(wat("tool-caller"))
    config = tmp_path / f"{name}.config"
    config.write_text(json.dumps(["toy", tool, args]))
    caxton(
        "agent", "deploy", str(component), "--name", name, "--config", f"@{config}",
        "--tools", grants, "--timeout", "1s", server=server.address,
    )  # fmt: skip


def trace_until(server: ServerProcess, conversation: str, wanted: str) -> list[str]:
    """`caxton trace` of a conversation, once a line matches `wanted` (the handling committed)."""
    deadline = time.monotonic() + 30
    while True:
        lines = caxton("trace", "--conversation-id", conversation, server=server.address)
        found = lines.stdout.splitlines()
        if any(re.search(wanted, line) for line in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def send(server: ServerProcess, to: str) -> str:
    sent = caxton("send", "--to", to, "--content", "{}", server=server.address)
    found = re.search(r"conversation (\w+)", sent.stdout)
    assert found is not None, sent.stdout
    return found.group(1)


def test_tools_list_and_call_against_real_mcp_servers(
    tool_server: ServerProcess, tmp_path: Path
) -> None:
    listed = caxton("tools", "list", server=tool_server.address).stdout
    assert re.search(r"^db\s+running\s+stdio: .*mcp-server-sqlite --db-path", listed, re.M)
    assert "  • db.read_query(query: string)" in listed
    assert "  • time.get_current_time(timezone: string)" in listed
    assert re.search(r"^web\s+running\s+http: http://127\.0\.0\.1:\d+/mcp", listed, re.M)
    assert "timeout 400ms, at most 8 at once, breaker after 2 failures for 5s" in listed
    as_json = [json.loads(line) for line in caxton(
        "tools", "list", "--json", "--no-start", server=tool_server.address
    ).stdout.splitlines() if line.startswith("{")]  # fmt: skip
    schema = next(t for s in as_json if s["name"] == "db" for t in s["tools"])["input_schema"]
    assert schema["required"] == ["query"]

    create = '{"query": "CREATE TABLE stock (item TEXT, qty INTEGER)"}'
    caxton("tools", "call", "db", "create_table", "--args", create, server=tool_server.address)
    insert = '{"query": "INSERT INTO stock VALUES (\'widget\', 42)"}'
    caxton("tools", "call", "db", "write_query", "--args", insert, server=tool_server.address)
    read = caxton(
        "tools", "call", "db", "read_query", "--args", '{"query": "SELECT * FROM stock"}',
        server=tool_server.address,
    ).stdout  # fmt: skip
    assert "[{'item': 'widget', 'qty': 42}]" in read
    assert "✓ db.read_query answered in" in read

    now = caxton(
        "tools", "call", "time", "get_current_time", "--args", '{"timezone": "Etc/UTC"}',
        "--json", server=tool_server.address,
    ).stdout  # fmt: skip
    assert json.loads(now)["structuredContent"]["timezone"] == "Etc/UTC"
    over_http = caxton(
        "tools", "call", "web", "echo", "--args", '{"text": "over http"}',
        server=tool_server.address,
    ).stdout  # fmt: skip
    assert "over http" in over_http

    big = caxton(
        "tools", "call", "toy", "big", "--args", '{"size": 5000}', server=tool_server.address
    ).stdout
    assert "(truncated)" in big

    failed = caxton(
        "tools", "call", "toy", "fail", "--args", '{"reason": "no stock"}',
        server=tool_server.address, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert (
        "✗ toy.fail failed after" in failed.stderr
        and "tool-error: Error executing tool fail: no stock" in failed.stderr
    )
    unknown = caxton("tools", "call", "nope", "x", server=tool_server.address, check=False)
    assert unknown.returncode == 1
    assert "no tool server named 'nope' (configured: db, time, toy, web)" in unknown.stderr
    bad = caxton(
        "tools", "call", "db", "x", "--args", "[1]", server=tool_server.address, check=False
    )
    assert bad.returncode == 2 and "--args: must be a JSON object" in bad.stderr


def test_timeouts_open_the_breaker_a_trial_closes_it_and_refusals_are_recorded(
    tool_server: ServerProcess, tmp_path: Path
) -> None:
    server = tool_server
    deploy_caller(server, tmp_path, "slow", "hang", {"seconds": 30}, "toy.*")
    deploy_caller(server, tmp_path, "quick", "echo", {"text": "fine"}, "toy.echo")
    deploy_caller(server, tmp_path, "nosy", "pid", {}, "toy.echo,time.*")
    status = caxton("agent", "status", "nosy", server=server.address).stdout
    assert "tools: time.*, toy.echo" in status

    first = trace_until(server, send(server, "slow"), "tool-failed")
    assert any(
        re.search(r'agent="slow" tool="toy.hang" status="tool-failed" took="\d+ms" '
                  r'error="timeout: toy.hang did not answer within 400ms"', line)
        for line in first
    ), first  # fmt: skip
    second = trace_until(server, send(server, "slow"), "breaker-open")
    assert any('tool="toy" status="breaker-open" error="after 2 failures' in x for x in second)
    listed = caxton("tools", "list", "--no-start", server=server.address).stdout
    assert re.search(r"^toy\s+breaker open", listed, re.M)
    # (that calls fail fast meanwhile is checked in test_agents_calling_tools.py, without
    # racing the reset time against CLI start-ups on a loaded machine)
    time.sleep(5.0)  # the breaker's reset time: a rule about time, nothing to await
    trial = trace_until(server, send(server, "quick"), "breaker-closed")
    statuses = [re.search(r'status="([\w-]+)"', x).group(1) for x in trial]  # type: ignore[union-attr]
    assert statuses[statuses.index("tool-called") :][:4] == [
        "tool-called", "breaker-half-open", "tool-returned", "breaker-closed",
    ]  # fmt: skip

    refused = trace_until(server, send(server, "nosy"), "tool-failed")
    assert any(
        'agent="nosy" tool="toy.pid" status="tool-failed" error="refused: toy.pid is not '
        'granted to nosy' in x for x in refused
    ), refused  # fmt: skip
    assert any('agent="nosy" message="request" status="failed"' in x for x in refused)

    assert server.stop() == 0
    log = "".join(server.lines)
    assert "circuit breaker open for toy after 2 failures" in log
    assert "circuit breaker closed for toy: calls go through" in log


def test_tool_servers_are_stopped_with_the_server(tool_server: ServerProcess) -> None:
    answer = caxton("tools", "call", "toy", "pid", "--json", server=tool_server.address).stdout
    pid = json.loads(answer)["structuredContent"]["result"]
    os.kill(pid, 0)  # running
    assert tool_server.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bad_tool_tables_are_refused_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "caxton.toml"
    config.write_text('[tools.db]\ncommand = "x"\ntimeout = "fast"\n')
    started = caxton(
        "server", "start", "--config", str(config), "--data-dir", str(tmp_path / "d"), check=False
    )
    assert started.returncode == 2
    assert started.stderr.strip() == (
        f"✗ {config}: tools.db: timeout: 'fast' is not a duration (examples: 200ms, 5s, 5m, 1h)"
    )


def test_trace_shows_a_call_s_arguments_and_result_and_verbose_the_handling_s_journal(
    tool_server: ServerProcess, tmp_path: Path
) -> None:
    component = tmp_path / "chatty-caller.wasm"
    component.write_bytes(wat("chatty-caller"))
    config = json.dumps(["time", "get_current_time", {"timezone": "UTC"}])
    caxton(
        "agent", "deploy", str(component), "--name", "teller", "--config", config,
        "--tools", "time.*", "--timeout", "1s", server=tool_server.address,
    )  # fmt: skip
    conversation = send(tool_server, "teller")
    trace_until(tool_server, conversation, 'status="received"')

    verbose = caxton(
        "trace", "--conversation-id", conversation, "--verbose", server=tool_server.address
    ).stdout.splitlines()

    assert any(
        'tool="time.get_current_time" status="tool-called" args={"timezone": "UTC"}' in line
        for line in verbose
    ), verbose
    assert any(
        re.search(r'status="tool-returned" took="[\d.<]+ms" result=\{"timezone": "UTC", ', line)
        for line in verbose
    ), verbose
    handled = next(i for i, line in enumerate(verbose) if 'status="received"' in line)
    journal = verbose[handled + 1 : handled + 6]
    assert [line.split()[0] for line in journal] == ["log", "now", "random", "call-tool", "log"]
    assert journal[0] == "    log info   asking the tool"
    as_json = caxton(
        "trace", "--conversation-id", conversation, "--json", "-v", server=tool_server.address
    ).stdout.splitlines()
    (received,) = [json.loads(x) for x in as_json if '"status": "received"' in x]
    assert [entry["kind"] for entry in received["journal"]] == [
        "log", "now", "random", "call-tool", "log",
    ]  # fmt: skip
