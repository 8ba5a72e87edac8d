"""examples/inventory end to end: a Python agent (componentize-py) answers `query-ref` with
SQL run by the real SQLite MCP server; the conversation is then re-executed offline with
no tool server at all, from the recorded tool results."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import AgentBuilds
from tests.e2e.conftest import ServerProcess, caxton, free_port
from tests.tools.conftest import ROOT, registry_server

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "inventory"


def test_the_inventory_checker_answers_from_the_database_and_replays_without_it(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    source = EXAMPLE / "inventory_checker.py"
    shutil.copyfile(agent_builds.component(source), tmp_path / "inventory_checker.wasm")
    # the example's caxton.toml, with the server from the test venvs and files in tmp_path
    config = (EXAMPLE / "caxton.toml").read_text()
    config = config.replace('"mcp-server-sqlite"', f'"{registry_server("sqlite")}"')
    config = config.replace('"inventory.db"', f'"{tmp_path / "inventory.db"}"')
    (tmp_path / "caxton.toml").write_text(config)
    data = tmp_path / "data"
    agent_builds.seed(data, source)  # the server deploys it without compiling
    server = ServerProcess(data, f"127.0.0.1:{free_port()}")
    server.start("--config", str(tmp_path / "caxton.toml"))
    at = server.address
    try:
        create = '{"query": "CREATE TABLE stock (item TEXT, qty INTEGER)"}'
        caxton("tools", "call", "db", "create_table", "--args", create, server=at)
        insert = "{\"query\": \"INSERT INTO stock VALUES ('widget', 42), ('gadget', 7)\"}"
        caxton("tools", "call", "db", "write_query", "--args", insert, server=at)
        caxton(
            "agent", "deploy", str(tmp_path / "inventory_checker.wasm"),
            "--name", "InventoryChecker", "--tools", "db.read_query", server=at,
        )  # fmt: skip

        def ask(item: str) -> tuple[str, str]:
            sent = caxton(
                "send", "--to", "InventoryChecker", "--performative", "query-ref",
                "--protocol", "fipa-query", "--content", json.dumps({"item": item}),
                "--wait", "20s", server=at,
            )  # fmt: skip
            found = re.search(r"conversation (\w+)", sent.stdout)
            assert found is not None, sent.stdout
            return found.group(1), sent.stdout

        widget, answer = ask("widget")
        assert "reply inform from InventoryChecker" in answer
        assert '"qty":42' in answer.replace(" ", "")
        _, unknown = ask("sprocket")
        assert '"known":false' in unknown.replace(" ", "")

        trace = caxton("trace", "--conversation-id", widget, server=at).stdout
        assert 'agent="InventoryChecker" tool="db.read_query" status="tool-called"' in trace
        assert 'agent="InventoryChecker" tool="db.read_query" status="tool-returned"' in trace
        assert server.stop() == 0
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()

    # no server, no caxton.toml, no database: only the log and the new build
    (tmp_path / "inventory.db").unlink()
    replayed = caxton(
        "replay", "--conversation", widget, "--log", str(data),
        "--with", f"InventoryChecker={tmp_path / 'inventory_checker.wasm'}",
    )  # fmt: skip
    text = replayed.stdout
    assert "query-ref from client:" in text and "✓ same" in text, text
    assert "✓ identical: 1 inputs, 1 messages, same as recorded" in text, text
    assert not (tmp_path / "inventory.db").exists()  # nothing called the SQLite server
