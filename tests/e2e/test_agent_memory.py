"""Agents' own memory, durable: rebuilt from the log after a trap, a SIGKILL of the server,
and a redeploy that keeps it; a message whose re-execution traps is quarantined once."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from caxton.shell.archive import LogSource
from tests.conftest import AgentBuilds
from tests.e2e.conftest import ServerProcess, caxton, free_port

AGENTS = Path(__file__).parent / "agents"


def count(address: str, content: str = "{}") -> dict[str, int]:
    """Sends to the counter and returns its answer's content."""
    said = caxton(
        "send", "--to", "counter", "--content", content, "--wait", "60s", server=address
    ).stdout  # fmt: skip
    assert "reply inform from counter" in said, said
    return dict(json.loads(said[said.index("{") : said.rindex("}") + 1]))


def events(address: str, tmp_path: Path) -> list[dict[str, object]]:
    out = tmp_path / "events.jsonl"
    caxton("events", "export", "--format", "jsonl", "-o", str(out), server=address)
    return [json.loads(line) for line in out.read_text().splitlines()]


def of_type(found: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [e["data"] for e in found if e["type"] == kind]  # type: ignore[misc]


async def memories(data: Path, positions: list[int]) -> list[int]:
    """The counter's count in its memory at each of these positions of the log."""
    source = await LogSource.open(data)
    try:
        found = [await source.memory("counter", 0, p) for p in positions]
    finally:
        await source.close()
    return [json.loads(m.state)["count"] for m in found if m is not None]


@pytest.fixture
def counter(tmp_path: Path, agent_builds: AgentBuilds) -> Path:
    agent_builds.seed(tmp_path / "data", AGENTS / "counter.py", AGENTS / "counter_v2.py")
    path = tmp_path / "counter.wasm"
    shutil.copyfile(agent_builds.component(AGENTS / "counter.py"), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("every", ["2", "0"], ids=["snapshots", "no-snapshots"])
def test_a_counter_survives_a_trap_and_a_server_sigkill(
    tmp_path: Path, counter: Path, every: str
) -> None:
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start()
    address = server.address
    try:
        caxton(
            "agent", "deploy", str(counter), "--name", "counter", "--timeout", "1s",
            "--snapshot-every", every, server=address,
        )  # fmt: skip
        answers = [count(address) for _ in range(3)]
        assert [a["count"] for a in answers] == [1, 2, 3]
        seed = answers[0]["seed"]

        trapped = caxton(
            "send", "--to", "counter", "--content", '{"spin": true}', "--wait", "60s",
            server=address, check=False,
        )  # fmt: skip
        assert trapped.returncode == 1 and "timeout" in trapped.stdout + trapped.stderr
        assert count(address) == {"count": 4, "seed": seed}  # rebuilt after the restart

        server.kill()
        server = ServerProcess(tmp_path / "data", address).start()
        assert count(address) == {"count": 5, "seed": seed}  # rebuilt from the log

        state = caxton("debug", "agent", "counter", "--state", server=address).stdout
        assert '"count": 5' in state and "5 handlings" in state
        found = events(address, tmp_path)
    finally:
        server.kill()
    # the memory at each handling, rebuilt from the log file as the replay TUI's pane does
    handled = [e["position"] for e in found if e["type"] == "MessageHandled"]
    counts = asyncio.run(memories(tmp_path / "data", [int(str(p)) for p in handled]))
    assert counts == [1, 2, 3, 4, 5]
    starts = of_type(found, "AgentStarted")
    assert [s["memory"] for s in starts] == [True, True, True]
    assert starts[1]["rebuilt"] + starts[1]["restored"] == 3  # type: ignore[operator]
    assert starts[2]["rebuilt"] + starts[2]["restored"] == 4  # type: ignore[operator]
    snapshots = of_type(found, "AgentSnapshotted")
    if every == "2":
        assert [s["handled"] for s in snapshots] == [2, 4]
        assert starts[2]["restored"] == 4 and starts[2]["rebuilt"] == 0
    else:
        assert snapshots == []
        assert starts[2]["rebuilt"] == 4


@pytest.mark.slow
def test_a_redeploy_keeps_memory_and_quarantines_a_poison_message_once(
    tmp_path: Path, counter: Path, agent_builds: AgentBuilds
) -> None:
    v2 = tmp_path / "counter_v2.wasm"
    shutil.copyfile(agent_builds.component(AGENTS / "counter_v2.py"), v2)
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start()
    address = server.address
    try:
        caxton("agent", "deploy", str(counter), "--name", "counter", server=address)
        seed = count(address)["seed"]
        assert count(address, '{"poison": true}')["count"] == 2  # the first build takes it
        assert count(address)["count"] == 3

        # one conversation re-executed: the build starts from the memory it had then
        (*_, third) = of_type(events(address, tmp_path), "MessageHandled")
        replayed = caxton(
            "replay", "--conversation", str(third["conversation_id"]),
            "--with", f"counter={counter}", server=address, check=False,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "starts from its memory" in replayed.stderr and "identical" in replayed.stdout

        # regression replay of an agent with memory: every handling since it began
        same = caxton(
            "replay", "--agent", "counter", "--with", f"counter={counter}", server=address
        )
        assert "memory of counter#0" in same.stdout and "identical" in same.stdout
        other = caxton(
            "replay", "--agent", "counter", "--with", f"counter={v2}",
            server=address, check=False,
        )  # fmt: skip
        assert other.returncode == 1 and "diverged" in other.stdout, other.stdout + other.stderr

        deployed = caxton(
            "agent", "deploy", str(v2), "--name", "counter", "--timeout", "1s",
            "--replace", "--keep-memory", server=address,
        ).stdout  # fmt: skip
        assert "1 message(s) quarantined" in deployed
        assert "new build diverges: 2 of 2 handlings differ" in deployed
        # the poison message is not in the rebuilt memory: two handlings, then this one
        assert count(address) == {"count": 3, "seed": seed, "version": 2}

        server.stop()
        server = ServerProcess(tmp_path / "data", address).start()
        assert count(address)["count"] == 4  # rebuilt again, without trying the poison again
        status = caxton("debug", "agent", "counter", server=address).stdout
        assert "1 message(s) quarantined" in status
        (quarantined,) = of_type(events(address, tmp_path), "MessageQuarantined")
        assert "timeout" in str(quarantined["reason"])
        trace = caxton(
            "trace", "--conversation-id", str(quarantined["conversation_id"]), server=address
        ).stdout
        assert 'status="quarantined"' in trace and "timeout" in trace
    finally:
        server.kill()
