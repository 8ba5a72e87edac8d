"""The benchmarks' Caxton scenarios still run against the current runtime (tiny sizes, no
timing asserted: speed is measured by `python -m bench`, not here). A change to the node
or the log that breaks a scenario fails here, not in the next full benchmark run."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import contract_net, memory, runtime, tracing
from tests.conftest import AgentBuilds


@pytest.fixture(autouse=True)
def collector_thresholds() -> Iterator[None]:
    """The scenarios set the server's collector thresholds (process-wide): put them back."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


async def test_spawn_request_reply_and_throughput_complete(tmp_path: Path) -> None:
    for name in ("spawn", "rr", "tp"):
        (tmp_path / name).mkdir()
    spawned = await runtime.spawn_one_by_one(tmp_path / "spawn", 3)
    replies = await runtime.request_reply(tmp_path / "rr", 5)
    rate = await runtime.throughput(tmp_path / "tp", 2, 50)

    assert len(spawned) == 3 and len(replies) == 5 and rate > 0


async def test_a_ping_pong_runs_until_its_count_of_messages_is_handled(tmp_path: Path) -> None:
    rate, handled = await runtime.ping_pong(tmp_path, pairs=1, seconds=0, messages=20)

    assert handled >= 20 and rate > 0


async def test_a_contract_net_round_collects_every_bid(tmp_path: Path) -> None:
    samples = await contract_net.contract_net(tmp_path, bidders=3, rounds=2)

    assert len(samples) == 2


async def test_the_tracing_scenario_ships_the_spans_of_every_message(tmp_path: Path) -> None:
    figures = await tracing.throughput(tmp_path, "traces-memory", 20)

    assert figures["spans_exported"] > 0 and figures["spans_dropped"] == 0


@pytest.mark.slow
async def test_the_memory_scenarios_rebuild_the_counter_and_time_its_pane(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    build = memory.Build(
        agent_builds.component(memory.COUNTER).read_bytes(), agent_builds.compiled(memory.COUNTER)
    )
    rebuilt = await memory.rebuild_run(tmp_path / "rebuild", build, messages=5, warmup=2)
    pane = tmp_path / "pane"
    await memory.handle_first(pane, build, 200, every=100)
    snapshots, handled = await memory.positions(pane)
    chosen = memory.steps(snapshots, handled, 100)
    server = await memory.pane_server(pane, chosen, 1)
    offline, first = await memory.pane_offline(pane, chosen, 1)
    floor = await memory.restore_floor(pane, chosen[0], 1)

    rows = [
        *memory.rebuild_rows([rebuilt], 5),
        *memory.pane_rows(chosen, server, offline, first, floor, 200),
    ]
    assert rebuilt.first.handled == 7 and sorted(snapshots) == [100, 200]
    assert [s.rebuilt for s in chosen] == [0, 1, 99, 0]  # a snapshot just after: restored
    assert all(row["median"] > 0 for row in rows)
