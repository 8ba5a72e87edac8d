"""The tool bridge's overhead per call, against the same MCP server called with the SDK.

    python -m bench.tools [--quick]      # results to bench/results/<date>-tools.json

Both sides call `echo` of tests/tools/toybox.py (a stdio MCP server written with the
SDK), each on its own server process started the same way, one call at a time:

- floor: `mcp.Client.call_tool` on the event loop (what any SDK user pays);
- caxton: what an agent's `call-tool` import runs, from a worker thread as a guest on
  the worker pool does: grant check, arguments parsed, the call handed to the loop
  (`call_blocking`), breaker admitted and settled, a concurrency slot, the same SDK
  call, the result serialized and bounded, and the events and journal entry built
  (`CallContext.call_tool`).

Batches alternate between the two, so drift on this noisy machine hits both alike.
Target (issue 5): p50 ≤ 1.5 × the direct call.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from bench.scenario import Result, median, pct, result, run_async
from caxton.domain.acl import AclMessage, Performative
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.context import CallContext, ToolAccess
from caxton.shell.tools import ToolServerConfig
from caxton.shell.tools.bridge import ToolBridge

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 1.5
ARGS = {"text": "x" * 100}


def _toybox() -> ToolServerConfig:
    return ToolServerConfig(
        name="toy",
        command=sys.executable,
        args=("-m", "tests.tools.toybox"),
        env={"PYTHONPATH": str(ROOT)},
        timeout_ms=10_000,
    )


def _params() -> StdioServerParameters:
    config = _toybox()
    return StdioServerParameters(
        command=config.command, args=list(config.args), env=dict(config.env)
    )


def _context(bridge: ToolBridge) -> CallContext:
    cause = AclMessage(
        id="bench-m",
        performative=Performative.REQUEST,
        sender="client:bench",
        receivers=("agent",),
        content="{}",
        conversation_id="bench-c",
    )
    return CallContext(
        agent="agent",
        cause=cause,
        clock=SystemClock(),
        max_content_bytes=1 << 20,
        tools=ToolAccess(bridge=bridge, grants=("toy.echo",)),
    )


def _through_bridge(bridge: ToolBridge, n: int) -> list[float]:
    """n calls as a guest on the worker pool makes them; µs each."""
    context = _context(bridge)
    text = json.dumps(ARGS)
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        context.call_tool("toy", "echo", text)
        out.append((time.perf_counter_ns() - started) / 1000)
    context.tool_events.clear()
    context.journal.clear()
    return out


async def _direct(client: Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        await client.call_tool("echo", ARGS)
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


async def _one_run(calls: int, batch: int) -> tuple[list[float], list[float]]:
    bridge = ToolBridge((_toybox(),))
    bridge.bind()
    loop = asyncio.get_running_loop()
    try:
        async with Client(_params(), mode="legacy", cache=None) as client:
            # warm both: servers started, code paths and pydantic models exercised
            await _direct(client, 20)
            await loop.run_in_executor(None, _through_bridge, bridge, 20)
            direct: list[float] = []
            bridged: list[float] = []
            while len(direct) < calls:
                direct += await _direct(client, batch)
                bridged += await loop.run_in_executor(None, _through_bridge, bridge, batch)
    finally:
        await bridge.close()
    return direct, bridged


def run(quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    calls = 300 if quick else 2_000
    directs, bridgeds = [], []
    for _ in range(runs):
        direct, bridged = run_async(_one_run(calls, 50))
        directs.append(direct)
        bridgeds.append(bridged)
    ours = median(pct(b, 0.5) for b in bridgeds)
    floor = median(pct(d, 0.5) for d in directs)
    return [
        result(
            "tool_call_overhead",
            unit="µs",
            median=ours,
            p99=median(pct(b, 0.99) for b in bridgeds),
            floor=("the same MCP server called directly with the mcp SDK, same run", floor),
            target={"p50_ratio_to_floor": TARGET_RATIO},
            met=ours <= TARGET_RATIO * floor,
            calls=calls,
            runs=runs,
            floor_p99=median(pct(d, 0.99) for d in directs),
            note="an agent's call-tool as the host runs it (from a worker thread: grant, "
            "hand-off to the loop, breaker, slot, SDK call, result bounded, events and "
            "journal built) against mcp.Client.call_tool on the loop; toybox echo over stdio",
            samples={"caxton": bridgeds[-1], "floor": directs[-1]},
        )
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 calls a run, 2 runs")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    for row in rows:
        row.pop("samples", None)
        print(
            f"{row['scenario']}: p50 {row['median']:.0f} µs, p99 {row['p99']:.0f} µs; "
            f"direct SDK call p50 {row['floor']['median']:.0f} µs "
            f"(x{row['ratio_to_floor']:.2f}, target x{TARGET_RATIO}: "
            f"{'met' if row['met'] else 'missed'})"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "python": sys.version.split()[0],
        "results": rows,
    }
    target = RESULTS / f"{document['date']}-tools.json"
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"✓ wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
