"""The seed's "3 AM test", end to end against a real server subprocess and the real CLI.

An order desk (a Python agent) asks `inventory` (a WAT agent whose handler needs 300 ms)
about each order. Inventory's time budget is 150 ms, so it times out; the desk drops
the platform's `failure`, and the customer's conversation stalls past its reply-by.
The operator gets the alert from /metrics, finds the conversation (`caxton top`), sees
where it stalled (`caxton trace`) and why (`caxton debug agent`), raises the timeout with
`caxton config set` — no restart — and the next order completes. Every step is an event.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from caxton.domain.events import AgentReconfigured, AgentStarted
from caxton.shell.store import EventLog
from tests.conftest import AgentBuilds
from tests.e2e.conftest import ServerProcess, caxton, write_component
from tests.support import free_port

pytestmark = pytest.mark.slow

AGENTS = Path(__file__).parent / "agents"
ORDER = '{"item": "lamp", "quantity": 2}'


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def order(address: str) -> tuple[int, str, str]:
    result = caxton(
        "send",
        "--to",
        "order-desk",
        "--performative",
        "request",
        "--protocol",
        "fipa-request",
        "--content",
        ORDER,
        "--reply-by",
        "1s",
        "--wait",
        "3s",
        server=address,
        check=False,
    )
    found = re.search(
        r"caxton trace --conversation-id (\w+)|conversation (\w+)", result.stdout + result.stderr
    )
    assert found is not None, result.stdout + result.stderr
    return result.returncode, found.group(1) or found.group(2), result.stdout + result.stderr


def test_a_stalled_conversation_is_found_explained_and_fixed_live(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    agent_builds.seed(tmp_path / "data", AGENTS / "order_desk.py")  # deploys without compiling
    metrics = f"127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
        "--metrics", metrics, "--health", f"127.0.0.1:{free_port()}"
    )
    address = server.address
    try:
        desk = tmp_path / "order_desk.wasm"
        shutil.copyfile(agent_builds.component(AGENTS / "order_desk.py"), desk)
        caxton("agent", "deploy", str(desk), "--name", "order-desk", server=address)
        inventory = write_component(tmp_path, "busy-reply")
        caxton(
            "agent", "deploy", str(inventory), "--name", "inventory",
            "--timeout", "150ms", "--config", "300", server=address,
        )  # fmt: skip

        # 03:23 — a customer's order gets no answer in time
        code, conversation, said = order(address)
        assert code == 1 and "no reply within" in said

        # the alert: a conversation stalled past its reply-by; inventory keeps timing out
        found = scrape(metrics)
        assert found["caxton_conversations", (("state", "stalled"),)] == 1
        assert found["caxton_traps_total", (("agent", "inventory"), ("kind", "timeout"))] == 1

        # which conversation: caxton top lists it, stalled, and says who has not answered
        top = caxton("top", "--once", server=address).stdout
        (line,) = [row for row in top.splitlines() if row.startswith("stalled")]
        assert conversation in line and "no answer from order-desk" in line
        assert "inventory#0 trapped: timeout" in line

        # where it stalled: the trace ends with inventory's timeout and a failure nobody relayed
        trace = caxton("trace", "--conversation-id", conversation, server=address).stdout
        steps = trace.strip().splitlines()
        assert 'agent="order-desk" message="request" status="received"' in steps[1]
        assert 'agent="order-desk" message="request" status="sent" to="inventory"' in steps[2]
        assert any(
            s.startswith("[") and 'agent="inventory"' in s and "timed out after 150 ms" in s
            for s in steps
        ), trace
        assert 'agent="order-desk" message="failure" status="received"' in steps[-1]

        # the root cause: inventory's figures, traps and restarts
        debug = caxton("debug", "agent", "inventory", "--show-metrics", server=address).stdout
        assert re.match(r"Memory: 1 × 64MiB limit \| Queue: \d+ messages \| Handling: ", debug)
        assert "timeout: timed out after 150 ms" in debug
        assert re.search(r"replica 0 attempt 1 after", debug)
        settings = caxton("config", "get", "--agent", "inventory", server=address).stdout
        assert re.search(r"timeout\s+150ms\s+\(deploy\)", settings)

        # a slip of the finger changes nothing and says why, on one line
        typo = caxton(
            "config", "set", "--agent", "inventory", "--timeout=0s", server=address, check=False
        )
        assert typo.returncode == 1
        assert typo.stderr.strip() == "✗ timeout: must be between 1ms and 10m"
        ghost = caxton(
            "config", "set", "--agent", "invntory", "--timeout=2s", server=address, check=False
        )
        assert (
            ghost.returncode == 1 and ghost.stderr.startswith("✗ ") and "invntory" in ghost.stderr
        )

        # the fix, live: a longer time budget, applied to the running instance
        fixed = caxton(
            "config", "set", "--agent", "inventory", "--timeout=2s", server=address
        ).stdout
        assert "✓ inventory reconfigured" in fixed
        assert re.search(r"timeout\s+2s\s+\(config set\)", fixed)

        # the next order completes, with no restart since the fix
        code, second, said = order(address)
        assert code == 0 and "reply inform from order-desk" in said and second != conversation
        assert (
            scrape(metrics)["caxton_traps_total", (("agent", "inventory"), ("kind", "timeout"))]
            == 1
        )
    finally:
        assert server.stop() == 0

    history = _history(tmp_path / "data" / "events.db")
    reconfigured = [r for r in history if isinstance(r.event, AgentReconfigured)]
    assert [r.event for r in reconfigured] == [
        AgentReconfigured(agent="inventory", timeout_ms=2_000)
    ]
    starts_after = [
        r
        for r in history
        if isinstance(r.event, AgentStarted)
        and r.event.agent == "inventory"
        and r.position > reconfigured[0].position
    ]
    assert starts_after == []


def _history(path: Path) -> list:  # type: ignore[type-arg]
    import asyncio

    async def read() -> list:  # type: ignore[type-arg]
        log = await EventLog.open(str(path))
        try:
            return await log.read()
        finally:
            await log.close()

    return asyncio.run(read())
