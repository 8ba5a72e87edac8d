"""What observability costs the runtime: message throughput with metrics, live figures and
span export on or off, interleaved in one run (the issue's budget: tracing at 100% into an
in-memory exporter costs at most 15% of throughput; with no collector listening,
throughput is unchanged within noise).

    python -m bench.tracing [--quick] [--runs N]

Modes, each on a fresh node and SQLite file, in rotation so that every mode sees the same
machine load:

- `off`: the bare node (as `bench.runtime`).
- `metrics`: Prometheus counters and live figures counted from every committed event.
- `traces-memory`: that, plus the span process (as the server runs it) at 100%, its
  exporter keeping nothing (the spans are built and converted, then let go).
- `traces-sampled`: the same at `--trace-sampling 0.1`.
- `traces-nowhere`: 100% again, but exporting over OTLP/gRPC to a port nobody listens on.

Two throughputs per mode: messages handled per second, and (traces-memory, -sampled) the
same until the span process has also built and shipped every span of the run, so that
work deferred past the last message is counted too. With no collector, export attempts
wait for their timeouts in the span process; only handling is timed there. Beside them,
the event loop's own CPU time per message (its thread's, which other processes, the
span process included, do not add to) and the span process's CPU time per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scenario import Result, median, result
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import Limits, MessageDeadLettered, MessageHandled, Recorded
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.collector import tune_collector
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.live import LiveStats
from caxton.shell.telemetry.metrics import Metrics
from caxton.shell.telemetry.span_follower import SpanSettings
from caxton.shell.telemetry.span_process import SpanProcess
from caxton.shell.wasm import WasmHost
from tests.support import wat

MODES = ("off", "metrics", "traces-memory", "traces-sampled", "traces-nowhere")
# 20 ms: the most an agent may take and still run inline on the loop (ADR 0002), as in
# bench/runtime.py; 10 ms trapped minimal agents when a loaded machine preempted a call
FAST = Limits(timeout_ms=20, memory_bytes=1 << 20, mailbox=100_000)
AGENTS = 10
BATCH = 200


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spans(mode: str, store: Path, from_position: int) -> SpanProcess | None:
    if mode not in ("traces-memory", "traces-sampled", "traces-nowhere"):
        return None
    settings = SpanSettings(
        store=str(store),
        from_position=from_position,
        traces="otlp-grpc" if mode == "traces-nowhere" else "discard",
        endpoint=f"http://127.0.0.1:{_closed_port()}" if mode == "traces-nowhere" else "",
        sampling=0.1 if mode == "traces-sampled" else 1.0,
        timeout=1.0,
    )
    return SpanProcess(settings)


async def throughput(directory: Path, mode: str, messages: int) -> dict[str, float]:
    tune_collector()  # as `caxton server start` does
    log = await EventLog.open(str(directory / "events.db"))
    host = WasmHost(directory / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="bench")
    handled = 0
    done = asyncio.Event()

    def count(recorded: Recorded) -> None:
        nonlocal handled
        # a handling that trapped (a loaded machine can preempt the budget) is settled by
        # its dead letter: counting only handlings waited forever (the -15 of a full run)
        if isinstance(recorded.event, MessageHandled | MessageDeadLettered):
            handled += 1
            if handled >= messages:
                done.set()

    if mode != "off":
        metrics, stats = Metrics(), LiveStats()
        metrics.attach(node)
        node.observers += [metrics.observe, stats.observe]
    node.observers.append(count)
    await node.start()
    for i in range(AGENTS):
        await node.deploy(DeploySpec(name=f"s{i}", component=wat("silent"), limits=FAST))
    spans = _spans(mode, directory / "events.db", node.world.position + 1)
    if spans is not None:
        spans.start()
        await spans.ready()  # as a server's would be by its first message

    spans_cpu = _cpu_s(spans.pid) if spans is not None else 0.0
    start = time.perf_counter()
    loop_cpu = time.thread_time()
    for offset in range(0, messages, BATCH):
        await asyncio.gather(
            *(node.send(_message(f"s{(offset + i) % AGENTS}")) for i in range(BATCH))
        )
    await done.wait()
    handled_s = time.perf_counter() - start
    if spans is not None and mode in ("traces-memory", "traces-sampled"):
        await spans.flush(node.world.position)
    shipped_s = time.perf_counter() - start
    loop_cpu = time.thread_time() - loop_cpu
    spans_cpu = _cpu_s(spans.pid) - spans_cpu if spans is not None else 0.0
    if spans is not None:
        await spans.close(node.world.position)
    exported = spans.exported if spans is not None else 0
    dropped = spans.dropped if spans is not None else 0

    await node.shutdown()
    await log.close()
    host.close()
    return {
        "handled_per_s": messages / handled_s,
        "shipped_per_s": messages / shipped_s,
        "spans_exported": exported,
        "spans_dropped": dropped,
        "loop_cpu_us_per_msg": loop_cpu / messages * 1e6,
        "span_process_cpu_us_per_msg": spans_cpu / messages * 1e6,
    }


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux's /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _message(to: str) -> AclMessage:
    return AclMessage(
        id="", performative=Performative.INFORM, sender="", receivers=(to,), content="{}"
    )


async def _rounds(runs: int, messages: int) -> dict[str, list[dict[str, float]]]:
    found: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(runs):
        for mode in MODES:
            with tempfile.TemporaryDirectory() as scratch:
                found[mode].append(await throughput(Path(scratch), mode, messages))
    return found


def run(quick: bool, runs: int | None = None) -> list[Result]:
    runs = runs or (3 if quick else 5)
    messages = 4_000 if quick else 20_000
    found = asyncio.run(_rounds(runs, messages))
    base = median(r["handled_per_s"] for r in found["off"])
    results = []
    for mode in MODES:
        handled = median(r["handled_per_s"] for r in found[mode])
        shipped = median(r["shipped_per_s"] for r in found[mode])
        # work deferred past the last message counts (no collector: exports only wait)
        figure = shipped if mode in ("traces-memory", "traces-sampled") else handled
        cost = 1 - figure / base
        budget = {
            "off": None,
            "metrics": 0.05,
            "traces-memory": 0.15,
            "traces-sampled": 0.15,
            "traces-nowhere": 0.15,
        }
        target = budget[mode]
        results.append(
            result(
                f"throughput_{mode.replace('-', '_')}",
                unit="msg/s",
                median=figure,
                target=f"cost <= {target:.0%} of off" if target is not None else "reference",
                met=target is None or cost <= target,
                higher_is_better=True,
                handled_per_s=handled,
                shipped_per_s=shipped,
                loop_cpu_us_per_msg=round(median(r["loop_cpu_us_per_msg"] for r in found[mode]), 1),
                span_process_cpu_us_per_msg=round(
                    median(r["span_process_cpu_us_per_msg"] for r in found[mode]), 1
                ),
                cost_vs_off=round(cost, 3),
                runs=[{k: round(v, 1) for k, v in r.items()} for r in found[mode]],
            )
        )
    return results


def main(argv: list[str] | None = None, out: Callable[[str], Any] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args(argv)
    for figures in run(args.quick, args.runs):
        out(json.dumps(figures))


if __name__ == "__main__":
    main()
