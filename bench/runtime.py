"""Runtime core benchmarks (spawn, request→reply, throughput, memory), each with its floor.

    .venv/bin/python -m bench.runtime [--quick] [--out bench/results]

Every scenario runs in a fresh node on a fresh SQLite file (WAL, synchronous=NORMAL),
`--runs` times; the figure reported is the median of the runs' values, and each is
printed with the floor measured in the same process just before it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import Limits, MessageSent
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from tests.support import wat

FAST = Limits(timeout_ms=10, memory_bytes=1 << 20, mailbox=100_000)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fresh_node(directory: Path) -> tuple[Node, EventLog, WasmHost]:
    log = await EventLog.open(str(directory / "events.db"))
    host = WasmHost(directory / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="bench")
    await node.start()
    return node, log, host


async def close(node: Node, log: EventLog, host: WasmHost) -> None:
    await node.shutdown()
    await log.close()
    host.close()


# --- floors ---------------------------------------------------------------


def floor_instantiate(n: int) -> float:
    """µs per bare `Linker.instantiate(Store(engine), component)` of the silent agent."""
    engine = wasmtime.Engine()
    comp = component.Component(engine, wat("silent"))
    linker = component.Linker(engine)
    linker.define_unknown_imports_as_traps(comp)
    keep = []
    start = time.perf_counter()
    for _ in range(n):
        keep.append(linker.instantiate(wasmtime.Store(engine), comp))
    return (time.perf_counter() - start) / n * 1e6


def floor_call(n: int) -> list[float]:
    """µs per bare call of the reply agent's `handle` with a JSON envelope (host send stubbed)."""
    engine = wasmtime.Engine()
    comp = component.Component(engine, wat("reply"))
    linker = component.Linker(engine)
    with linker.root() as root, root.add_instance("caxton:agent/host@0.1.0") as host:
        host.add_func("send", lambda store, text: component.Variant("ok", "id"))
    store = wasmtime.Store(engine)
    handle = linker.instantiate(store, comp).get_func(store, "handle")
    assert handle is not None
    envelope = json.dumps(_request("echo").to_dict())
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        handle(store, envelope)
        handle.post_return(store)
        samples.append((time.perf_counter() - t) * 1e6)
    return samples


async def floor_queue_ping_pong(n: int) -> list[float]:
    """µs per round trip between two coroutines over two asyncio.Queues."""
    ping: asyncio.Queue[int] = asyncio.Queue()
    pong: asyncio.Queue[int] = asyncio.Queue()

    async def echo() -> None:
        while True:
            value = await ping.get()
            pong.put_nowait(value)

    task = asyncio.create_task(echo())
    samples = []
    for i in range(n):
        t = time.perf_counter()
        ping.put_nowait(i)
        await pong.get()
        samples.append((time.perf_counter() - t) * 1e6)
    task.cancel()
    return samples


# --- scenarios ------------------------------------------------------------


def _request(to: str) -> AclMessage:
    return AclMessage(
        id="", performative=Performative.REQUEST, sender="", receivers=(to,), content="{}"
    )


async def spawn(directory: Path, n: int) -> dict[str, float]:
    """Deploys n minimal agents concurrently; µs per agent until all are started and committed."""
    node, log, host = await fresh_node(directory)
    wasm = wat("silent")
    await node.deploy(DeploySpec(name="warm", component=wasm, limits=FAST))
    start = time.perf_counter()
    await asyncio.gather(
        *(node.deploy(DeploySpec(name=f"a{i}", component=wasm, limits=FAST)) for i in range(n))
    )
    elapsed = time.perf_counter() - start
    running = sum(1 for a in node.world.agents.values() if a.instances[0].lifecycle == "running")
    assert running == n + 1, running
    await close(node, log, host)
    return {"per_agent_us": elapsed / n * 1e6}


async def request_reply(directory: Path, n: int) -> list[float]:
    """µs per request → reply with a minimal agent, in-process, both messages committed."""
    node, log, host = await fresh_node(directory)
    await node.deploy(DeploySpec(name="echo", component=wat("reply"), limits=FAST))
    samples = []
    for i in range(n + 200):
        t = time.perf_counter()
        result = await node.send(_request("echo"), wait_ms=5_000)
        if i >= 200:
            samples.append((time.perf_counter() - t) * 1e6)
        assert result.reply is not None
    await close(node, log, host)
    return samples


async def throughput(directory: Path, agents: int, messages: int) -> float:
    """Messages/s accepted, delivered and handled (all committed) by `agents` minimal agents."""
    node, log, host = await fresh_node(directory)
    for i in range(agents):
        await node.deploy(DeploySpec(name=f"s{i}", component=wat("silent"), limits=FAST))
    done = asyncio.Event()
    target = log_handled = 0

    def on_commit(future: asyncio.Future[Any]) -> None:
        nonlocal log_handled
        log_handled += sum(1 for r in future.result() if type(r.event).__name__ == "MessageHandled")
        if log_handled >= target:
            done.set()

    original = node.commit

    def counting_commit(events: Any, traceparent: str = "") -> Any:
        future = original(events, traceparent)
        future.add_done_callback(on_commit)
        return future

    node.commit = counting_commit  # type: ignore[method-assign]
    target = messages
    batch = 200
    start = time.perf_counter()
    for offset in range(0, messages, batch):
        await asyncio.gather(
            *(node.send(_request(f"s{(offset + j) % agents}")) for j in range(batch))
        )
    await done.wait()
    elapsed = time.perf_counter() - start
    await close(node, log, host)
    return messages / elapsed


async def ping_pong(directory: Path, pairs: int, seconds: float) -> float:
    """Messages/s handled by `pairs` pairs of minimal agents replying to each other forever
    (agent to agent: every message accepted into the log before delivery)."""
    node, log, host = await fresh_node(directory)
    for i in range(pairs):
        for side in ("a", "b"):
            await node.deploy(DeploySpec(name=f"{side}{i}", component=wat("reply"), limits=FAST))
    handled = 0
    original = node.commit

    def counting_commit(events: Any, traceparent: str = "") -> Any:
        nonlocal handled
        handled += sum(1 for e in events if type(e).__name__ == "MessageHandled")
        return original(events, traceparent)

    node.commit = counting_commit  # type: ignore[method-assign]
    for i in range(pairs):  # the first ball, as if a{i} had sent it (the API cannot)
        serve = AclMessage(
            id=f"serve-{i}",
            performative=Performative.INFORM,
            sender=f"a{i}",
            receivers=(f"b{i}",),
            conversation_id=f"rally-{i}",
        )
        await node.commit([MessageSent(message=serve, deliveries=(f"b{i}#0",))])
    await asyncio.sleep(0.5)  # warm-up: a fixed window, this is a rate measurement
    start_count, start = handled, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (handled - start_count) / (time.perf_counter() - start)
    await close(node, log, host)
    return rate


def memory_in_fresh_process(n: int) -> float:
    """`memory(n)` in a new interpreter, so that heap freed by earlier scenarios cannot be
    reused by the agents and hide their cost."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.runtime", "--memory-probe", str(n)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    ).stdout
    return float(out.strip().splitlines()[-1])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def memory(directory: Path, n: int) -> float:
    """Resident bytes per idle minimal agent, after n are deployed and started."""
    node, log, host = await fresh_node(directory)
    wasm = wat("silent")
    await node.deploy(DeploySpec(name="warm", component=wasm, limits=FAST))
    gc.collect()
    before = rss_bytes()
    for offset in range(0, n, 500):
        await asyncio.gather(
            *(
                node.deploy(DeploySpec(name=f"m{i}", component=wasm, limits=FAST))
                for i in range(offset, min(n, offset + 500))
            )
        )
    gc.collect()
    per_agent = (rss_bytes() - before) / n
    await close(node, log, host)
    return per_agent


# --- driver ---------------------------------------------------------------


async def repeat(runs: int, scenario: Callable[[Path], Awaitable[Any]]) -> list[Any]:
    values = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="caxton-bench-") as tmp:
            values.append(await scenario(Path(tmp)))
    return values


async def main(quick: bool, runs: int, out: Path) -> dict[str, Any]:
    n_spawn = 1_000 if quick else 10_000
    n_rr = 500 if quick else 3_000
    n_msgs = 5_000 if quick else 30_000
    results: dict[str, Any] = {}

    instantiate = statistics.median(floor_instantiate(2_000) for _ in range(runs))
    spawns = await repeat(runs, lambda d: spawn(d, n_spawn))
    spawn_us = statistics.median(s["per_agent_us"] for s in spawns)
    results["spawn"] = {
        "agents": n_spawn,
        "unit": "µs/agent",
        "median": spawn_us,
        "target": 45,
        "floor": {"name": "bare wasmtime instantiate", "median": instantiate},
        "ratio_to_floor": spawn_us / instantiate,
        "met": spawn_us <= 45,
    }
    report("spawn", results["spawn"])

    queue = await floor_queue_ping_pong(20_000)
    call = floor_call(5_000)
    rr_runs = await repeat(runs, lambda d: request_reply(d, n_rr))
    p50 = statistics.median(pct(r, 0.5) for r in rr_runs)
    p99 = statistics.median(pct(r, 0.99) for r in rr_runs)
    results["request_reply"] = {
        "unit": "µs",
        "median": p50,
        "p99": p99,
        "target": {"p50": 150, "p99": 1000},
        "floor": {"name": "asyncio.Queue ping-pong", "median": pct(queue, 0.5)},
        "floor_wasm_call": {"name": "bare wasmtime handle() call", "median": pct(call, 0.5)},
        "ratio_to_floor": p50 / pct(queue, 0.5),
        "met": p50 <= 150 and p99 <= 1000,
    }
    report("request_reply", results["request_reply"])

    for agents in (1, 100):
        rates = await repeat(runs, lambda d, a=agents: throughput(d, a, n_msgs))
        rate = statistics.median(rates)
        results[f"throughput_{agents}"] = {
            "unit": "msg/s",
            "median": rate,
            "agents": agents,
            "target": 20_000,
            "met": rate >= 20_000,
        }
        report(f"throughput_{agents}", results[f"throughput_{agents}"])

    for pairs in (1, 50):
        rates = await repeat(runs, lambda d, p=pairs: ping_pong(d, p, 2.0 if quick else 5.0))
        rate = statistics.median(rates)
        results[f"agent_to_agent_{pairs}_pairs"] = {
            "unit": "msg/s",
            "median": rate,
            "pairs": pairs,
            "target": 20_000,
            "met": rate >= 20_000,
        }
        report(f"a2a_{pairs}_pairs", results[f"agent_to_agent_{pairs}_pairs"])

    per_agent = statistics.median(
        memory_in_fresh_process(n_spawn) for _ in range(1 if quick else runs)
    )
    results["memory"] = {
        "unit": "bytes/agent",
        "agents": n_spawn,
        "median": per_agent,
        "target": 100 * 1024,
        "met": per_agent <= 100 * 1024,
    }
    report("memory", results["memory"])

    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": len(__import__("os").sched_getaffinity(0)),
        },
        "runs": runs,
        "quick": quick,
        "scenarios": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y-%m-%d}-runtime{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {path}")
    return document


def report(name: str, result: dict[str, Any]) -> None:
    floor = result.get("floor")
    text = f"{name:<16} median {result['median']:>10.1f} {result['unit']}"
    if "p99" in result:
        text += f"  p99 {result['p99']:.1f}"
    if floor:
        text += f"  floor {floor['name']}: {floor['median']:.1f}  ×{result['ratio_to_floor']:.1f}"
    text += f"  target {result['target']}  {'met' if result['met'] else 'MISSED'}"
    print(text, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--memory-probe", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:

        async def probe() -> None:
            with tempfile.TemporaryDirectory(prefix="caxton-bench-") as tmp:
                print(await memory(Path(tmp), args.memory_probe))

        asyncio.run(probe())
    else:
        asyncio.run(main(args.quick, args.runs, args.out))
