"""Agents' memory (issue 15): rebuilding it from the log against handling its messages
the first time, and the replay TUI's memory pane at a step of a long-lived agent.

    python -m bench.memory [--quick]      # results to bench/results/<date>-memory.json

The agent is tests/e2e/agents/counter.py (a Python SDK agent: `init` draws a journaled
random seed, each message increments a count and is answered), built once with
componentize-py and compiled once; every run gets a fresh node on a fresh SQLite log
with the compiled code already in its component cache, as a server restarted on its data
directory has it. Times are CPU seconds of this process (every thread: the event loop,
the log's writer, the worker pool where guests run), which the machine's other load
inflates far less than the wall clock; the pane's rows give both.

- Rebuild per message: the counter, deployed with --snapshot-every 0, handles N messages
  sent by an in-process client (200 per bulk send): the CPU per message of handling it
  the first time (accepted, committed, delivered, handled, answer committed) is the
  reference. Then, on that log, `memory_at` (what a rebuild of the whole memory costs:
  plan read, instance made, `init` and every handling re-executed, snapshot taken) per
  handled message, and its parts: reading the log (`read_plan`), re-executing the
  handlings (`rebuild` minus the same rebuild with no handling: instantiate and `init`),
  and, beside, what the guest's own `handle` took when first handled (`cpu_us` recorded
  in each `MessageHandled`): re-execution's floor. The node is then restarted on the log
  and the actor's own rebuild (`AgentStarted.rebuild_us`, wall clock) is reported too.
  Target: rebuild per message ≤ first handling.
- Memory pane: the counter, deployed with --snapshot-every 100, handles 10,000 messages
  (2,000 with --quick). Its memory is rebuilt as of a step in the middle: at the snapshot
  (restored, nothing re-executed), 1 and 99 handlings after it, and at the step of the
  100th handling after it, which took the next snapshot (recorded one position later, so
  that step restores the snapshot before and re-executes 100). Both the server's path
  (`memory_at` on the `EventLog`, GetAgentMemory's) and the TUI's offline path
  (`LogSource.memory` on the data directory, with the collector at CPython's defaults as
  in `caxton replay`) are timed, medians of repeats on one open log. The TUI's first
  memory after opening a log also compiles the build (its sandbox host has no cache):
  reported apart. Floor, same run: instantiate, `init` with the recorded answers,
  `restore` of the snapshot and `snapshot()`, nothing read from the log or re-executed.
  Target: ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from bench.runtime import Settled, close, fresh_node, send_all
from bench.scenario import Result, median, pct, result, run_async, write_run
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import AgentSnapshotted, AgentStarted, MessageHandled
from caxton.domain.ids import agent_stream
from caxton.domain.memory import Plan, rebuilding
from caxton.replay.reexec import Journal
from caxton.shell.agents import cached_build
from caxton.shell.archive import LogSource
from caxton.shell.reexec import ReplayServices
from caxton.shell.runtime.memory import Rebuilt, memory_at, read_plan, rebuild
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost

ROOT = Path(__file__).resolve().parents[1]
COUNTER = ROOT / "tests" / "e2e" / "agents" / "counter.py"
BUILDS = Path(tempfile.gettempdir()) / "caxton-bench-builds"
AGENT = "counter"
PANE_TARGET_MS = 100.0
REBUILD_REPEATS = 3
"""Each part of a rebuild is timed this many times a run (the median kept)."""
CHUNK = 1_000
"""Messages sent before waiting for them to be handled: within the default mailbox."""
CPYTHON_THRESHOLDS = (700, 10, 10)
"""The collector's thresholds in a process that does not tune them (`caxton replay`)."""

T = TypeVar("T")


# --- the agent and its log ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Build:
    """The counter's component and its compiled code (a component cache's `.cwasm`)."""

    wasm: bytes
    artifact: Path


def counter_build(cache: Path, source: Path = COUNTER) -> Build:
    """The counter built (componentize-py, cached by its inputs in BUILDS) and compiled
    once into `cache`."""
    wasm = cached_build(source, BUILDS).output.read_bytes()
    with WasmHost(cache, workers=1) as host:
        digest = host.load(wasm, "counter.wasm").digest
        return Build(wasm, host.cache.artifact_path(digest))


def seed(directory: Path, build: Build) -> None:
    """Puts the compiled counter in the component cache of a node on `directory`."""
    components = directory / "components"
    components.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build.artifact, components / build.artifact.name)


def requests(n: int, tag: str) -> list[AclMessage]:
    return [
        AclMessage(
            id=f"{tag}-{i}",
            performative=Performative.REQUEST,
            sender="client:bench",
            receivers=(AGENT,),
            content="{}",
        )
        for i in range(n)
    ]


async def send_chunked(node: Node, messages: list[AclMessage], settled: Settled) -> None:
    for offset in range(0, len(messages), CHUNK):
        await send_all(node, messages[offset : offset + CHUNK], settled)


@dataclass(frozen=True, slots=True)
class FirstHandling:
    handled: int
    """Handlings in the log (warm-up included)."""
    cpu_us: float
    """Process CPU per message of the measured ones, handled the first time."""
    guest_cpu_us: float
    """The median of the guest's own `handle` CPU, as recorded in `MessageHandled`."""


async def handle_first(
    directory: Path, build: Build, messages: int, *, every: int, warmup: int = 0
) -> FirstHandling:
    """The counter deployed with `--snapshot-every every` on a fresh node handles `warmup`
    then `messages` messages (the latter measured); the node is shut down after."""
    seed(directory, build)
    node, log, host = await fresh_node(directory)
    try:
        await node.deploy(DeploySpec(name=AGENT, component=build.wasm, snapshot_every=every))
        settled = Settled()
        node.observers.append(settled)
        await send_chunked(node, requests(warmup, "warm"), settled)
        measured = requests(messages, "msg")
        before = time.process_time()
        await send_chunked(node, measured, settled)
        cpu = time.process_time() - before
        snapshots = [
            r.event
            for r in await log.read_streams([agent_stream(AGENT)])
            if isinstance(r.event, AgentSnapshotted)
        ]
        guest: list[float] = []
        async for page in log.pages():
            guest += [r.event.cpu_us for r in page if isinstance(r.event, MessageHandled)]
    finally:
        await close(node, log, host)
    assert len(guest) == warmup + messages, f"{len(guest)} handled, not {warmup + messages}"
    assert len(snapshots) == (len(guest) // every if every else 0)
    return FirstHandling(len(guest), cpu / messages * 1e6, median(guest))


async def timed(work: Awaitable[T]) -> tuple[T, float, float]:
    """`work`'s result, wall seconds and CPU seconds (this process, every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = await work
    return done, time.perf_counter() - wall, time.process_time() - cpu


def count_in(state: str) -> int:
    return int(json.loads(state)["count"])


# --- rebuild per message ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebuildRun:
    first: FirstHandling
    total_us: float
    """`memory_at` CPU per handled message: the whole rebuild, end to end."""
    read_us: float
    reexecute_us: float
    fixed_ms: float
    """Instantiate and `init` re-executed (a rebuild with no handling), CPU."""
    actor_us: float
    """The actor's rebuild on a node restart, wall clock per handled message."""


async def rebuild_run(directory: Path, build: Build, messages: int, warmup: int) -> RebuildRun:
    first = await handle_first(directory, build, messages, every=0, warmup=warmup)
    n = first.handled
    log = await EventLog.open(str(directory / "events.db"))
    host = WasmHost(directory / "components")
    reads, fixed, reexecutes, totals = [], [], [], []
    try:
        # one whole rebuild first: the compiled component loaded and its code paged in, as
        # in a server that has run it (the first one in a process costs up to 2x more)
        await memory_at(log, host, AGENT, 0)
        for _ in range(REBUILD_REPEATS):  # interleaved: drift on the machine hits each alike
            plan, _, cpu = await timed(read_plan(log, AGENT, 0))
            assert plan is not None and plan.snapshot is None and len(plan.handlings) == n
            reads.append(cpu)
            _, _, cpu = await timed(_rebuild(host, replace(plan, handlings=())))
            fixed.append(cpu)
            reexecuted, _, cpu = await timed(_rebuild(host, plan))
            assert reexecuted.rebuilt == n and not reexecuted.diverged, reexecuted
            reexecutes.append(cpu)
            memory, _, cpu = await timed(memory_at(log, host, AGENT, 0))
            assert memory is not None and count_in(memory.state) == n, memory
            totals.append(cpu)
    finally:
        await log.close()
        host.close()
    return RebuildRun(
        first=first,
        total_us=median(totals) / n * 1e6,
        read_us=median(reads) / n * 1e6,
        reexecute_us=(median(reexecutes) - median(fixed)) / n * 1e6,
        fixed_ms=median(fixed) * 1e3,
        actor_us=await actor_rebuild_us(directory, n) / n,
    )


async def _rebuild(host: WasmHost, plan: Plan) -> Rebuilt:
    loaded = host.get(plan.component)
    instance = host.instantiate(loaded, rebuilding(plan.limits), name="bench (sandbox)")
    try:
        done = await rebuild(instance, plan, plan.config)
    finally:
        instance.close()
    assert isinstance(done, Rebuilt), done
    return done


async def actor_rebuild_us(directory: Path, handled: int) -> float:
    """A node restarted on the log: the wall µs its actor took to rebuild the memory."""
    node, log, host = await fresh_node(directory)
    try:
        answered = await node.send(requests(1, "after")[0], wait_ms=60_000)
        assert answered.reply is not None
        assert json.loads(answered.reply.content)["count"] == handled + 1, answered.reply
        starts = [
            r.event
            for r in await log.read_streams([agent_stream(AGENT)])
            if isinstance(r.event, AgentStarted)
        ]
    finally:
        await close(node, log, host)
    assert starts[-1].rebuilt == handled, starts[-1]
    return float(starts[-1].rebuild_us)


# --- the memory pane ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """A position to ask the memory at, and what it holds there."""

    name: str
    position: int
    handled: int
    rebuilt: int
    what: str


def steps(snapshots: dict[int, int], handled: list[int], at: int) -> list[Step]:
    """Steps around the snapshot of `at` handlings: `snapshots` maps a snapshot's count
    of handlings to its position, `handled` holds the position of each handling."""
    return [
        Step("at_snapshot", snapshots[at], at, 0, "the snapshot's own position"),
        Step("1_after_snapshot", handled[at], at + 1, 1, "the handling after the snapshot"),
        Step("99_after_snapshot", handled[at + 98], at + 99, 99, "99 handlings after it"),
        Step(
            "100_after_snapshot",
            handled[at + 99],
            at + 100,
            0,
            "the step of the 100th handling after it, which took the next snapshot "
            "(recorded one position later, in its batch): that snapshot is restored",
        ),
    ]


async def positions(directory: Path) -> tuple[dict[int, int], list[int]]:
    log = await EventLog.open(str(directory / "events.db"))
    snapshots: dict[int, int] = {}
    handled: list[int] = []
    try:
        async for page in log.pages():
            for r in page:
                if isinstance(r.event, AgentSnapshotted):
                    snapshots[r.event.handled] = r.position
                elif isinstance(r.event, MessageHandled):
                    handled.append(r.position)
    finally:
        await log.close()
    return snapshots, handled


@dataclass(frozen=True, slots=True)
class Timings:
    wall_ms: list[float]
    cpu_ms: list[float]


async def pane_server(directory: Path, chosen: list[Step], repeats: int) -> dict[str, Timings]:
    """`memory_at` on the server's log (GetAgentMemory's path), `repeats` times a step."""
    log = await EventLog.open(str(directory / "events.db"))
    host = WasmHost(directory / "components")
    out: dict[str, Timings] = {}
    try:
        await memory_at(log, host, AGENT, 0, until=chosen[0].position)  # loads the component
        for step in chosen:
            walls, cpus = [], []
            for _ in range(repeats):
                memory, wall, cpu = await timed(memory_at(log, host, AGENT, 0, until=step.position))
                check(memory, step)
                walls.append(wall * 1e3)
                cpus.append(cpu * 1e3)
            out[step.name] = Timings(walls, cpus)
    finally:
        await log.close()
        host.close()
    return out


async def pane_offline(
    directory: Path, chosen: list[Step], repeats: int
) -> tuple[dict[str, Timings], Timings]:
    """`LogSource.memory` on the data directory (the TUI's `--log` path), `repeats` times
    a step; and the first one after opening, which also compiles the build."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*CPYTHON_THRESHOLDS)
    source = await LogSource.open(directory)
    out: dict[str, Timings] = {}
    try:
        first = chosen[0]
        memory, first_wall, first_cpu = await timed(source.memory(AGENT, 0, first.position))
        check(memory, first)
        for step in chosen:
            walls, cpus = [], []
            for _ in range(repeats):
                memory, wall, cpu = await timed(source.memory(AGENT, 0, step.position))
                check(memory, step)
                walls.append(wall * 1e3)
                cpus.append(cpu * 1e3)
            out[step.name] = Timings(walls, cpus)
    finally:
        await source.close()
        gc.set_threshold(*thresholds)
    return out, Timings([first_wall * 1e3], [first_cpu * 1e3])


def check(memory: Any, step: Step) -> None:
    assert memory is not None and count_in(memory.state) == step.handled, (memory, step)
    assert memory.rebuilt == step.rebuilt, (memory, step)


async def restore_floor(directory: Path, at: Step, repeats: int) -> Timings:
    """Instantiate, `init` with its recorded answers, `restore` the snapshot and take
    `snapshot()`: the memory back with nothing read or re-executed."""
    log = await EventLog.open(str(directory / "events.db"))
    host = WasmHost(directory / "components")
    try:
        plan = await read_plan(log, AGENT, 0, until=at.position)
        assert plan is not None and plan.snapshot is not None and not plan.handlings
        loaded = host.get(plan.component)
        walls, cpus = [], []
        for _ in range(repeats + 1):  # the first one warms up
            wall, cpu = time.perf_counter(), time.process_time()
            instance = host.instantiate(loaded, rebuilding(plan.limits), name="bench (floor)")
            services = ReplayServices(AGENT, None, Journal(plan.init_journal))
            await instance.init_async(plan.config, services, on_pool=True)
            await instance.restore_async(plan.snapshot, services)
            state, _ = await instance.snapshot_async(services, on_pool=True)
            instance.close()
            walls.append((time.perf_counter() - wall) * 1e3)
            cpus.append((time.process_time() - cpu) * 1e3)
            assert state is not None and count_in(state) == at.handled, state
    finally:
        await log.close()
        host.close()
    return Timings(walls[1:], cpus[1:])


# --- the scenarios of `python -m bench` ---------------------------------------------


def run(quick: bool) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="caxton-bench-memory-") as tmp:
        return list(run_async(_run(Path(tmp), quick)))


async def _run(tmp: Path, quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    messages = 500 if quick else 2_000
    warmup = 100
    handlings = 2_000 if quick else 10_000
    repeats = 5 if quick else 15

    started = time.perf_counter()
    build = await asyncio.to_thread(counter_build, tmp / "compiled")
    print(f"  (counter built and compiled in {time.perf_counter() - started:.0f} s)", flush=True)

    measured: list[RebuildRun] = []
    for i in range(runs):
        measured.append(await rebuild_run(tmp / f"rebuild-{i}", build, messages, warmup))
    out = rebuild_rows(measured, messages)

    pane = tmp / "pane"
    await handle_first(pane, build, handlings, every=100)
    snapshots, handled = await positions(pane)
    chosen = steps(snapshots, handled, (handlings // 2) // 100 * 100)
    server = await pane_server(pane, chosen, repeats)
    offline, first = await pane_offline(pane, chosen, repeats)
    floor = await restore_floor(pane, chosen[0], repeats)
    return out + pane_rows(chosen, server, offline, first, floor, handlings)


def rebuild_rows(measured: list[RebuildRun], messages: int) -> list[Result]:
    first = median(r.first.cpu_us for r in measured)
    total = median(r.total_us for r in measured)
    guest = median(r.first.guest_cpu_us for r in measured)
    handled = measured[0].first.handled
    return [
        result(
            "memory_rebuild_per_message",
            unit="µs",
            median=total,
            floor=("the same messages handled the first time, CPU per message", first),
            target={"cpu_ratio_to_floor": 1},
            met=total <= first,
            handled=handled,
            runs=len(measured),
            read_log_us=median(r.read_us for r in measured),
            reexecute_us=median(r.reexecute_us for r in measured),
            init_ms=median(r.fixed_ms for r in measured),
            actor_rebuild_wall_us=median(r.actor_us for r in measured),
            guest_handle_cpu_us=guest,
            note=f"CPU per handled message of rebuilding the counter's memory from a log of "
            f"{handled:,} handlings, no snapshot (memory_at: plan read, instance, init and "
            f"every handling re-executed, snapshot taken), against the CPU per message of "
            f"handling {messages:,} of them the first time (accepted, committed, delivered, "
            "handled, answer committed); actor_rebuild_wall_us: the actor's own rebuild on a "
            "node restart (AgentStarted.rebuild_us, wall) per handling",
        ),
        result(
            "memory_rebuild_read_log_per_message",
            unit="µs",
            median=median(r.read_us for r in measured),
            floor=("the first handling, CPU per message (for scale)", first),
            target=None,
            met=None,
            note="read_plan's CPU per handling: the agent's stream and the log after the "
            "memory's start read, decoded and sorted into what to re-execute",
        ),
        result(
            "memory_rebuild_reexecute_per_message",
            unit="µs",
            median=median(r.reexecute_us for r in measured),
            floor=("the guest's own handle() CPU when first handled (recorded)", guest),
            target=None,
            met=None,
            note="rebuild()'s CPU per handling, less the same rebuild with no handling "
            "(instantiate and init: init_ms in the row above): envelope encoded, the guest "
            "called on the worker pool with the journal's answers, its sends compared",
        ),
    ]


def pane_rows(
    chosen: list[Step],
    server: dict[str, Timings],
    offline: dict[str, Timings],
    first: Timings,
    floor: Timings,
    handlings: int,
) -> list[Result]:
    floor_ms, floor_cpu = median(floor.wall_ms), median(floor.cpu_ms)
    rows = []
    for path, timings in (("server", server), ("tui", offline)):
        for step in chosen:
            found = timings[step.name]
            ours, cpu = median(found.wall_ms), median(found.cpu_ms)
            how = (
                "memory_at on the server's EventLog (GetAgentMemory)"
                if path == "server"
                else "LogSource.memory on the data directory (caxton replay --log)"
            )
            row = result(
                f"memory_pane_{path}_{step.name}",
                unit="ms",
                median=ours,
                p99=pct(found.wall_ms, 0.99),
                floor=(
                    "restore the snapshot alone (instantiate, init, restore, snapshot)",
                    floor_ms,
                ),
                target={"median_ms": PANE_TARGET_MS},
                met=ours <= PANE_TARGET_MS,
                cpu_median_ms=cpu,
                floor_cpu_ms=floor_cpu,
                handlings=handlings,
                restored=step.handled - step.rebuilt,
                rebuilt=step.rebuilt,
                note=f"the counter's memory at step {step.handled:,} of {handlings:,} "
                f"handlings, snapshots every 100 ({step.what}; {step.rebuilt} "
                f"re-executed), {how}; CPU {cpu:.1f} ms against the floor's "
                f"{floor_cpu:.1f} ms",
            )
            if path == "tui":  # the plot: one panel per step, the TUI's path
                row["samples"] = {"caxton": found.wall_ms, "floor": floor.wall_ms}
            rows.append(row)
    ours, cpu = median(first.wall_ms), median(first.cpu_ms)
    rows.append(
        result(
            "memory_pane_tui_first_after_open",
            unit="ms",
            median=ours,
            floor=(
                "the same step once the build is loaded",
                median(offline["at_snapshot"].wall_ms),
            ),
            target={"median_ms": PANE_TARGET_MS},
            met=ours <= PANE_TARGET_MS,
            cpu_median_ms=cpu,
            note="the TUI's first memory after opening a log: LogSource's sandbox host "
            "loads the build from this user's cache (~/.cache/caxton/replay-components), "
            "which compiles it the first time a build is ever opened (a cold cache: "
            f"seconds); CPU {cpu:,.0f} ms",
        )
    )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    for row in rows:
        row.pop("samples", None)
        print(json.dumps(row, ensure_ascii=False))
    target = write_run("memory", rows, quick=args.quick)
    print(f"✓ wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
