"""Guest CPU is CPU: an agent waiting on a slow tool uses next to none, a busy one its
handling time; `caxton_guest_cpu_seconds_total` and `top`'s CPU ms/s read it.

Real wasmtime, a real node on SQLite, the real MCP toybox server as a subprocess.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from caxton.domain.events import Limits, MessageHandled, Recorded
from caxton.domain.schema import decode
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.telemetry.live import WINDOW_MS, LiveStats
from caxton.shell.telemetry.metrics import Metrics
from tests.support import wat
from tests.tools.conftest import close_node, make_node, toybox
from tests.tools.test_agents_calling_tools import handle_one, of_type

pytestmark = pytest.mark.timeout(120)

WAIT_S = 1.5
BUSY_MS = 400


def guest_cpu_seconds(metrics: Metrics, agent: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "caxton_guest_cpu_seconds_total" and sample.labels == {
                "agent": agent
            }:
                return sample.value
    raise AssertionError(f"no caxton_guest_cpu_seconds_total for {agent}")


async def handled_by(node: Node, agent: str) -> MessageHandled:
    (handled,) = of_type(await handle_one(node, agent), MessageHandled)
    return handled


async def test_an_agent_waiting_on_a_slow_tool_uses_almost_no_cpu(tmp_path: Path) -> None:
    node, bridge = await make_node(tmp_path, toybox(timeout_ms=30_000))
    metrics, stats = Metrics(), LiveStats()
    node.observers += [metrics.observe, stats.observe]
    try:
        await node.deploy(
            DeploySpec(
                name="waiter",
                component=wat("tool-caller"),
                limits=Limits(timeout_ms=1_000),
                config=json.dumps(["toy", "hang", {"seconds": WAIT_S}]),
                tools=("toy.*",),
            )
        )
        handled = await handled_by(node, "waiter")
        now = node.clock.now_ms()
    finally:
        await close_node(node, bridge)

    assert handled.duration_us >= WAIT_S * 1e6  # the wait is in the handling time
    assert handled.cpu_us < 0.2 * handled.duration_us  # and not in the CPU
    assert guest_cpu_seconds(metrics, "waiter") == pytest.approx(handled.cpu_us / 1e6)
    rates = stats.rates("waiter", now)
    assert rates.cpu_ms_per_second < 0.2 * handled.duration_us / WINDOW_MS  # top's figure


async def test_an_agent_that_keeps_busy_uses_the_cpu_the_process_used(tmp_path: Path) -> None:
    """Its CPU is what the process spent meanwhile (less the node's own share), not its
    wall time: on a loaded 2-core machine the two differ widely, so no ratio to it."""
    node, bridge = await make_node(tmp_path)
    metrics, stats = Metrics(), LiveStats()
    node.observers += [metrics.observe, stats.observe]
    try:
        await node.deploy(
            DeploySpec(
                name="busy",
                component=wat("busy-reply"),
                limits=Limits(timeout_ms=10_000),
                config=str(BUSY_MS),
            )
        )
        before = time.process_time_ns()
        handled = await handled_by(node, "busy")
        process_us = (time.process_time_ns() - before) / 1000
        now = node.clock.now_ms()
    finally:
        await close_node(node, bridge)

    assert handled.duration_us >= BUSY_MS * 1000 * 0.99  # perf_counter against host.now()
    assert 0.5 * process_us < handled.cpu_us <= process_us
    assert guest_cpu_seconds(metrics, "busy") == pytest.approx(handled.cpu_us / 1e6)
    assert stats.rates("busy", now).cpu_ms_per_second == pytest.approx(
        handled.cpu_us / 1e3 / (WINDOW_MS / 1000)
    )


def test_a_handling_recorded_before_cpu_was_measured_decodes_with_none() -> None:
    stored = {
        "message_id": "m1",
        "conversation_id": "c1",
        "agent": "a",
        "replica": 0,
        "journal": [],
        "duration_us": 5_000,
        "error": "",
    }
    handled = decode("MessageHandled", stored, version=1)
    assert isinstance(handled, MessageHandled)
    assert (handled.duration_us, handled.cpu_us) == (5_000, 0)
    metrics = Metrics()
    metrics.observe(Recorded(position=1, stream="s", version=1, at=0, event=handled))
    assert guest_cpu_seconds(metrics, "a") == 0.0
