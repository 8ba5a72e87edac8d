"""The API as a client sees it: a real `caxton server start` on 127.0.0.1 and one
CaxtonClient in this process.

Part of `python -m bench` (bench/__main__.py); `python -m bench.api [--quick]` prints the
rows alone. Each run starts a fresh server with a minimal WAT agent of each kind and
measures, in that server: the ListAgents round trip (the floor), one-way unary sends one at
a time and from 8 concurrent tasks, streamed sends (`send_many`, SendStream), and request →
reply (`invoke`). The server's CPU per message is read from /proc/<pid>/stat around each
scenario. The floor of streamed sends is the same sends given to a node in this process.
The figure reported is the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import runtime
from bench.scenario import Result, median, pct, result, run_async
from caxton.domain.acl import AclMessage, Performative
from caxton.shell.api.service import STREAM_WINDOW
from caxton.shell.client import STREAM_BATCH, CaxtonClient, SendResult
from caxton.shell.runtime.node import DeploySpec
from tests.support import free_port, wat

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
CONCURRENT_TASKS = 8


@dataclass
class Server:
    """`caxton server start` in a subprocess, metrics, health and tracing off."""

    process: subprocess.Popen[str]
    address: str

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def start_server(data_dir: Path) -> Server:
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "caxton", "server", "start", "--data-dir", str(data_dir)]
    options = ["--listen", address, "--log-level", "WARNING", "--metrics", "off"]
    process = subprocess.Popen(
        [*command, *options, "--health", "off", "--rest", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # it announces readiness on stdout
        lines.append(line)
        if "listening on" in line:
            return Server(process, address)
    raise RuntimeError("caxton server start exited before it listened:\n" + "".join(lines))


def inform(to: str) -> AclMessage:
    return AclMessage(
        id="", performative=Performative.INFORM, sender="", receivers=(to,), content="{}"
    )


@dataclass(frozen=True, slots=True)
class Measured:
    """One scenario in one server: latencies (µs) or a count over a time, and CPU per op."""

    samples: list[float]
    ops: int
    seconds: float
    server_cpu_us: float
    client_cpu_us: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


async def measured(
    server: Server, ops: int, work: Callable[[], Awaitable[list[float]]]
) -> Measured:
    server_before, client_before = server.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    samples = await work()
    seconds = time.perf_counter() - start
    return Measured(
        samples=samples,
        ops=ops,
        seconds=seconds,
        server_cpu_us=(server.cpu_seconds() - server_before) / ops * 1e6,
        client_cpu_us=(time.process_time() - client_before) / ops * 1e6,
    )


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t) * 1e6)
    return samples


async def one_server(sizes: dict[str, int]) -> dict[str, Measured]:
    """Every scenario, in one fresh server; each after a warm-up of its own kind."""
    with tempfile.TemporaryDirectory(prefix="caxton-bench-api-") as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            async with CaxtonClient(server.address) as client:
                # as bench/runtime.py's FAST: minimal agents, a mailbox no burst fills
                for kind, name in (("silent", "sink"), ("reply", "echo")):
                    await client.deploy(
                        wat(kind), name, timeout_ms=20, memory_bytes=1 << 20, mailbox=100_000
                    )
                return await _scenarios(server, client, sizes)
        finally:
            server.stop()


async def _scenarios(
    server: Server, client: CaxtonClient, sizes: dict[str, int]
) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    n, warm_up = sizes["round_trips"], sizes["warm_up"]
    await timed(warm_up, client.agents)
    out["list_agents"] = await measured(server, n, lambda: timed(n, client.agents))

    def send() -> Awaitable[SendResult]:
        return client.send("sink", "inform", "{}")

    await timed(warm_up, send)
    out["unary_sequential"] = await measured(server, n, lambda: timed(n, send))

    per_task = sizes["concurrent"] // CONCURRENT_TASKS

    async def concurrent() -> list[float]:
        runs = await asyncio.gather(*(timed(per_task, send) for _ in range(CONCURRENT_TASKS)))
        return [s for r in runs for s in r]

    out["unary_concurrent"] = await measured(server, per_task * CONCURRENT_TASKS, concurrent)

    streamed = sizes["streamed"]
    await client.send_many(inform("sink") for _ in range(5 * warm_up))

    async def stream() -> list[float]:
        results = await client.send_many(inform("sink") for _ in range(streamed))
        refused = [r for r in results if not isinstance(r, SendResult)]
        assert not refused, refused[:3]
        return []

    out["streamed"] = await measured(server, streamed, stream)

    def invoke() -> Awaitable[AclMessage]:
        return client.invoke("echo", {}, timeout=5.0)

    await timed(warm_up, invoke)
    out["invoke"] = await measured(server, n, lambda: timed(n, invoke))
    return out


async def in_process(n: int) -> Measured:
    """The floor of streamed sends: the same one-way messages given to a node in this
    process in batches as a stream's (`node.send_many`), no API between."""
    with tempfile.TemporaryDirectory(prefix="caxton-bench-api-") as tmp:
        node, log, host = await runtime.fresh_node(Path(tmp))
        try:
            await node.deploy(DeploySpec(name="sink", component=wat("silent"), limits=runtime.FAST))

            async def sends() -> list[float]:
                batches = [
                    [inform("sink") for _ in range(min(STREAM_BATCH, n - offset))]
                    for offset in range(0, n, STREAM_BATCH)
                ]
                for start in range(0, len(batches), STREAM_WINDOW // STREAM_BATCH):
                    window = batches[start : start + STREAM_WINDOW // STREAM_BATCH]
                    await asyncio.gather(*(node.send_many(batch) for batch in window))
                return []

            before = time.process_time()
            start = time.perf_counter()
            await sends()
            seconds = time.perf_counter() - start
            cpu_us = (time.process_time() - before) / n * 1e6
            return Measured([], n, seconds, server_cpu_us=cpu_us, client_cpu_us=0.0)
        finally:
            await runtime.close(node, log, host)


# --- the scenarios of `python -m bench` --------------------------------------


def run(quick: bool) -> list[Result]:
    return list(run_async(_run(quick)))


async def _run(quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    sizes = {
        "warm_up": 200,
        "round_trips": 1_000 if quick else 3_000,
        "concurrent": 2_000 if quick else 8_000,
        "streamed": 10_000 if quick else 40_000,
    }
    by_run = []
    for _ in range(runs):
        measured_run = await one_server(sizes)
        measured_run["in_process"] = await in_process(sizes["streamed"])
        by_run.append(measured_run)

    def each(name: str, figure: Callable[[Measured], float]) -> float:
        return median(figure(r[name]) for r in by_run)

    def cpu(name: str) -> dict[str, Any]:
        return {
            "server_cpu_us_per_op": each(name, lambda m: m.server_cpu_us),
            "client_cpu_us_per_op": each(name, lambda m: m.client_cpu_us),
        }

    floor = ("ListAgents round trip p50", each("list_agents", lambda m: pct(m.samples, 0.5)))
    invoke_p50 = each("invoke", lambda m: pct(m.samples, 0.5))
    invoke_p99 = each("invoke", lambda m: pct(m.samples, 0.99))
    streamed = each("streamed", lambda m: m.rate)
    unary = each("unary_sequential", lambda m: m.rate)
    last = by_run[-1]
    return [
        result(
            "api_request_reply",
            unit="µs",
            median=invoke_p50,
            p99=invoke_p99,
            floor=floor,
            target={"p50": 1_500},
            met=invoke_p50 <= 1_500,
            samples={"caxton": last["invoke"].samples, "floor": last["list_agents"].samples},
            **cpu("invoke"),
            note="CaxtonClient.invoke to a minimal WAT agent through `caxton server start` "
            "on 127.0.0.1: request and reply both committed",
        ),
        result(
            "api_unary_sends",
            unit="msg/s",
            median=unary,
            higher_is_better=True,
            target=None,
            met=None,
            p50_us=each("unary_sequential", lambda m: pct(m.samples, 0.5)),
            p99_us=each("unary_sequential", lambda m: pct(m.samples, 0.99)),
            **cpu("unary_sequential"),
            note="one-way Send calls one at a time from one client",
        ),
        result(
            f"api_unary_sends_{CONCURRENT_TASKS}_tasks",
            unit="msg/s",
            median=each("unary_concurrent", lambda m: m.rate),
            higher_is_better=True,
            target=None,
            met=None,
            **cpu("unary_concurrent"),
            note=f"one-way Send calls from {CONCURRENT_TASKS} tasks over one CaxtonClient",
        ),
        result(
            "api_streamed_sends",
            unit="msg/s",
            median=streamed,
            floor=("the same sends to a node in-process", each("in_process", lambda m: m.rate)),
            unary_sends_per_s=unary,
            in_process_cpu_us_per_op=each("in_process", lambda m: m.server_cpu_us),
            higher_is_better=True,
            target=10_000,
            met=streamed >= 10_000,
            messages=sizes["streamed"],
            **cpu("streamed"),
            note="CaxtonClient.send_many over one SendStream: every message accepted and "
            "acknowledged",
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The API's scenarios alone (see bench/api.py).")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in run(args.quick):
        row.pop("samples", None)
        print(json.dumps(row, ensure_ascii=False))
