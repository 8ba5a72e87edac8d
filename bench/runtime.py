"""Runtime core scenarios (spawn, request→reply, throughput, memory), each with its floor.

Part of `python -m bench` (see bench/__main__.py). Every scenario runs in a fresh node on
a fresh SQLite file (WAL, synchronous=NORMAL), `RUNS` times; the figure reported is the
median of the runs' values, beside the floor measured in the same process and the peers
measured in the same run (bench/peers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component

from bench import callgrind, peers
from bench.scenario import UNMEASURED, Result, Window, median, pct, repeat, result, run_async
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    Limits,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.collector import tune_collector
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from caxton.shell.wasm import instance as wasm_instance
from tests.support import wat

# 20 ms: the most an agent may take and still run inline on the loop (ADR 0002); a
# shorter budget traps minimal agents when a loaded machine preempts the call
FAST = Limits(timeout_ms=20, memory_bytes=1 << 20, mailbox=100_000)
# under valgrind a call runs tens of times slower: the counted runs give it room, and run
# it inline as FAST's calls are (counted() raises the inline threshold to match)
UNDER_VALGRIND = Limits(timeout_ms=10_000, memory_bytes=1 << 20, mailbox=100_000)


async def fresh_node(directory: Path) -> tuple[Node, EventLog, WasmHost]:
    tune_collector()  # as `caxton server start` does
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


def floor_instantiate(n: int) -> list[float]:
    """µs per bare `Linker.instantiate(Store(engine), component)` of the silent agent."""
    engine = wasmtime.Engine()
    comp = component.Component(engine, wat("silent"))
    linker = component.Linker(engine)
    linker.define_unknown_imports_as_traps(comp)
    keep = []
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        keep.append(linker.instantiate(wasmtime.Store(engine), comp))
        samples.append((time.perf_counter() - t) * 1e6)
    return samples


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


async def spawn_one_by_one(directory: Path, n: int) -> list[float]:
    """µs per minimal agent deployed and started, its events committed, one at a time."""
    node, log, host = await fresh_node(directory)
    wasm = wat("silent")
    await node.deploy(DeploySpec(name="warm", component=wasm, limits=FAST))
    samples = []
    for i in range(n):
        t = time.perf_counter()
        await node.deploy(DeploySpec(name=f"a{i}", component=wasm, limits=FAST))
        samples.append((time.perf_counter() - t) * 1e6)
    await close(node, log, host)
    return samples


async def deploy_many(node: Node, prefix: str, n: int, wasm: bytes, limits: Limits = FAST) -> None:
    for offset in range(0, n, 500):
        await asyncio.gather(
            *(
                node.deploy(DeploySpec(name=f"{prefix}{i}", component=wasm, limits=limits))
                for i in range(offset, min(n, offset + 500))
            )
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


async def request_reply(
    directory: Path, n: int, *, window: Window = UNMEASURED, limits: Limits = FAST
) -> list[float]:
    """µs per request → reply with a minimal agent, in-process, both messages committed."""
    node, log, host = await fresh_node(directory)
    await node.deploy(DeploySpec(name="echo", component=wat("reply"), limits=limits))
    request = _request("echo")
    for _ in range(200):  # warm-up
        assert (await node.send(request, wait_ms=5_000)).reply is not None
    samples = []
    window.begin()
    for _ in range(n):
        t = time.perf_counter()
        result = await node.send(request, wait_ms=5_000)
        samples.append((time.perf_counter() - t) * 1e6)
        assert result.reply is not None
    window.end()
    await close(node, log, host)
    return samples


# a handling that trapped (a loaded machine can preempt a 20 ms budget) is settled by its
# dead letter: counting only handlings would wait forever
SETTLING = frozenset((MessageHandled, MessageDeadLettered))


class Settled:
    """A node observer counting the messages whose handling is settled in the log, cheaply
    (it runs for every committed event), with a wait until a count is reached."""

    __slots__ = ("count", "reached", "target")

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def __call__(self, recorded: Recorded) -> None:
        if type(recorded.event) in SETTLING:
            self.count += 1
            if self.count >= self.target:
                self.reached.set()

    async def until(self, target: int) -> None:
        self.target = target
        if self.count < target:
            self.reached.clear()
            await self.reached.wait()


async def send_all(node: Node, requests: list[AclMessage], settled: Settled) -> None:
    """Sends `requests` 200 at a time with `send_many` (a client's bulk send, as a
    SendStream's messages are accepted), then waits until each is handled."""
    target = settled.count + len(requests)
    for offset in range(0, len(requests), 200):
        for sent in await node.send_many(requests[offset : offset + 200]):
            if isinstance(sent, Exception):
                raise sent
    await settled.until(target)


async def throughput(
    directory: Path,
    agents: int,
    messages: int,
    *,
    warmup: int = 0,
    window: Window = UNMEASURED,
    limits: Limits = FAST,
) -> float:
    """Messages/s accepted, delivered and handled (all committed) by `agents` minimal agents,
    after `warmup` messages sent the same way."""
    node, log, host = await fresh_node(directory)
    await deploy_many(node, "s", agents, wat("silent"), limits)
    settled = Settled()
    node.observers.append(settled)
    requests = [_request(f"s{i % agents}") for i in range(max(warmup, messages))]
    await send_all(node, requests[:warmup], settled)
    window.begin()
    start = time.perf_counter()
    await send_all(node, requests[:messages], settled)
    elapsed = time.perf_counter() - start
    window.end()
    await close(node, log, host)
    return messages / elapsed


async def ping_pong(
    directory: Path,
    pairs: int,
    seconds: float,
    *,
    messages: int | None = None,
    window: Window = UNMEASURED,
    limits: Limits = FAST,
) -> tuple[float, int]:
    """Messages/s handled by `pairs` pairs of minimal agents replying to each other forever
    (agent to agent: every message accepted into the log before delivery), and how many
    were handled in the measured `seconds` (or until `messages` were)."""
    node, log, host = await fresh_node(directory)
    for i in range(pairs):
        for side in ("a", "b"):
            await node.deploy(DeploySpec(name=f"{side}{i}", component=wat("reply"), limits=limits))
    settled = Settled()
    node.observers.append(settled)
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
    window.begin()
    start_count, start = settled.count, time.perf_counter()
    if messages is None:
        await asyncio.sleep(seconds)
    else:
        await settled.until(start_count + messages)
    handled = settled.count - start_count
    rate = handled / (time.perf_counter() - start)
    window.end()
    await close(node, log, host)
    return rate, handled


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
    await deploy_many(node, "m", n, wasm)
    gc.collect()
    per_agent = (rss_bytes() - before) / n
    await close(node, log, host)
    return per_agent


# --- counted under callgrind (bench/callgrind.py) ---------------------------


def counted(scenario: str, ops: int, window: Window) -> int:
    """Runs `scenario` for about `ops` operations with `window` around its measured loop
    only (after its warm-up); returns the operations that loop did. Scenarios:
    `throughput_<N>_agents` (messages), `request_reply` (requests),
    `agent_to_agent_<N>_pairs` (messages handled)."""

    # the same inline path as FAST's, with a budget valgrind's slowdown cannot exhaust (a
    # trapped call would restart its agent and count a different path): in this child only
    wasm_instance.INLINE_TIMEOUT_MS = UNDER_VALGRIND.timeout_ms

    async def one(directory: Path) -> int:
        kind, _, rest = scenario.partition("_")
        if scenario == "request_reply":
            return len(await request_reply(directory, ops, window=window, limits=UNDER_VALGRIND))
        if kind == "throughput":
            agents = int(rest.removesuffix("_agents"))
            warmup = max(1_000, agents)  # every agent has handled a message before
            await throughput(
                directory, agents, ops, warmup=warmup, window=window, limits=UNDER_VALGRIND
            )
            return ops
        if scenario.startswith("agent_to_agent_"):
            pairs = int(scenario.removeprefix("agent_to_agent_").removesuffix("_pairs"))
            return (
                await ping_pong(
                    directory, pairs, 0, messages=ops, window=window, limits=UNDER_VALGRIND
                )
            )[1]
        raise ValueError(f"no counted scenario {scenario!r}")

    with tempfile.TemporaryDirectory(prefix="caxton-bench-") as tmp:
        return int(asyncio.run(one(Path(tmp))))


# --- the scenarios of `python -m bench` --------------------------------------


MODULE = "bench.runtime"
INSTRUCTIONS_TARGET = 200_000
"""Instructions per durable message into 100 agents, on the loop thread (issue 13)."""


def run(quick: bool) -> list[Result]:
    return list(run_async(_run(quick)))


def instructions_row(counted: dict[str, Any]) -> Result:
    """The issue's instruction target as a row of its own, with where the instructions
    went (the report's "where the instructions go")."""
    per_op = counted.get("per_op")
    return result(
        "instructions_per_message_100_agents",
        unit="instructions/msg",
        median=per_op,
        target=INSTRUCTIONS_TARGET,
        met=None if per_op is None else per_op <= INSTRUCTIONS_TARGET,
        agents=100,
        where=counted.get("where"),
        note=(
            "callgrind: instructions on the event loop's thread per durable message into "
            "100 minimal agents (the throughput scenario after its warm-up, collected "
            "for its measured loop only; the load of the machine does not change it)"
            + (f"; not measured: {counted['error']}" if "error" in counted else "")
        ),
    )


async def _run(quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    out: list[Result] = []

    # spawn: one at a time (p50, p99) and 10,000 at once (amortized)
    n_spawn = 300 if quick else 1_000
    floor = floor_instantiate(3_000)
    one_by_one = await repeat(runs, lambda d: spawn_one_by_one(d, n_spawn))
    p50 = median(pct(r, 0.5) for r in one_by_one)
    p99 = median(pct(r, 0.99) for r in one_by_one)
    out.append(
        result(
            "spawn",
            unit="µs",
            median=p50,
            p99=p99,
            floor=("bare wasmtime instantiate of the same component", pct(floor, 0.5)),
            target={"p50": 100},
            met=p50 <= 100,
            agents=n_spawn,
            samples={"caxton": one_by_one[-1], "floor": floor},
            note="one minimal agent deployed, started and its events committed, one at a time",
        )
    )
    n_many = 2_000 if quick else 10_000
    many = await repeat(runs, lambda d: spawn(d, n_many))
    amortized = median(s["per_agent_us"] for s in many)
    out.append(
        result(
            f"spawn_{n_many}_at_once",
            unit="µs/agent",
            median=amortized,
            floor=("bare wasmtime instantiate of the same component", pct(floor, 0.5)),
            target={"p50": 60},
            met=amortized <= 60,
            agents=n_many,
            note="deploys issued concurrently, 500 at a time; elapsed time per agent",
        )
    )

    # request -> reply: floors, peers, ours
    n_rr = 1_000 if quick else 3_000
    queue = await floor_queue_ping_pong(20_000)
    call = floor_call(5_000)
    found = {
        "spade": peers.measure("spade-xmpp", 300 if quick else 1_000),
        "spade_in_process": peers.measure("spade-local", 500 if quick else 2_000),
        "thespian": peers.measure("thespian", 5_000 if quick else 20_000),
    }
    rr_runs = await repeat(runs, lambda d: request_reply(d, n_rr))
    p50 = median(pct(r, 0.5) for r in rr_runs)
    p99 = median(pct(r, 0.99) for r in rr_runs)
    samples = {"caxton": rr_runs[-1], "floor: asyncio queue": queue, "floor: wasm call": call}
    for name, figures in found.items():
        if "samples" in figures:
            samples[name] = figures.pop("samples")
    out.append(
        result(
            "request_reply",
            unit="µs",
            median=p50,
            p99=p99,
            floor=("asyncio.Queue ping-pong", pct(queue, 0.5)),
            peers=found,
            target={"p50": 150, "p99": 1000},
            met=p50 <= 150 and p99 <= 1000,
            instructions=callgrind.count(MODULE, "request_reply", 300 if quick else 1_000),
            floor_wasm_call={"name": "bare wasmtime handle() call", "median": pct(call, 0.5)},
            samples=samples,
            note=(
                "a client's request to a minimal WAT agent and its inform back, in-process, "
                "both messages committed to the log; SPADE over XMPP (two processes, its "
                "embedded server) and in one process (its container, no XMPP); Thespian "
                "actors in one process (simpleSystemBase)"
            ),
        )
    )

    # sustained throughput into 1, 100 and 10,000 agents; agent-to-agent ping-pong
    n_msgs = 5_000 if quick else 30_000
    for agents in (1, 100, 10_000):
        rates = await repeat(runs, partial(throughput, agents=agents, messages=n_msgs))
        rate = median(rates)
        scenario = f"throughput_{agents}_agents"
        counted = (
            {"error": "not counted with --quick (10,000 agents under valgrind)"}
            if quick and agents > 100
            else callgrind.count(MODULE, scenario, 1_000 if quick else 5_000, detail=agents == 100)
        )
        out.append(
            result(
                scenario,
                unit="msg/s",
                median=rate,
                higher_is_better=True,
                target=20_000,
                met=rate >= 20_000,
                agents=agents,
                instructions={k: v for k, v in counted.items() if k != "where"},
                note=(
                    "sends from a client, 200 per bulk send, each accepted, delivered and "
                    "handled (all committed)"
                ),
            )
        )
        if agents == 100:
            out.append(instructions_row(counted))
    for pairs in (1, 50):
        rates = await repeat(runs, partial(ping_pong, pairs=pairs, seconds=2.0 if quick else 5.0))
        rate = median(r for r, _ in rates)
        wanted = 10_000 if pairs == 1 else 20_000
        scenario = f"agent_to_agent_{pairs}_pairs"
        out.append(
            result(
                scenario,
                unit="msg/s",
                median=rate,
                higher_is_better=True,
                target=wanted,
                met=rate >= wanted,
                pairs=pairs,
                instructions=callgrind.count(MODULE, scenario, 500 if quick else 2_000),
                note="pairs of minimal agents replying to each other; every message committed",
            )
        )

    # memory per idle agent, each count in a fresh interpreter
    for n in (1_000, 10_000):
        per_agent = median(memory_in_fresh_process(n) for _ in range(1 if quick else runs))
        out.append(
            result(
                f"memory_{n}_agents",
                unit="bytes/agent",
                median=per_agent,
                target=100 * 1024,
                met=per_agent <= 100 * 1024,
                agents=n,
                note="resident bytes per idle minimal agent, measured in a fresh interpreter",
            )
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Measures memory per agent (used by run()).")
    parser.add_argument("--memory-probe", type=int, required=True)
    args = parser.parse_args()

    async def probe() -> None:
        with tempfile.TemporaryDirectory(prefix="caxton-bench-") as tmp:
            print(await memory(Path(tmp), args.memory_probe))

    asyncio.run(probe())
