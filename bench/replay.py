"""Replay scenarios on a large log: open a conversation (to the TUI's first frame), one
step forward and back in the TUI, and folding the whole log through the replay loader.

    python -m bench.replay [--quick]      # 1,000,000 events (100,000 with --quick)

The log holds contract-net conversations of 18 events each (a client's request, a cfp
to three bidders, their proposals, the award and the reports) written through
`EventLog`, as a server writes them. The conversation opened is one in the middle.

Floors, in the same run: opening — a bare `sqlite3` query of the conversation's rows by
stream and `orjson.loads` of each; a step — folding one event into the world (`evolve`),
which is all a step must compute; the whole-log fold — a bare sqlite3 read, orjson decode
and dict fold (bench/eventlog.py's floor).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson
from textual.pilot import Pilot

from bench.eventlog import FOLD_SHARE_OF_FLOOR, fold_bare
from bench.scenario import Result, median, pct, result, run_async, write_run
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import AgentDeployed, AgentStarted, Event, MessageHandled, MessageSent
from caxton.domain.ids import conversation_stream, sent_message_id
from caxton.domain.world import LiveWorld, evolve
from caxton.replay.recording import Recording
from caxton.shell.archive.sources import LogSource, recording
from caxton.shell.runtime.collector import paused_collector
from caxton.shell.store import EventLog, Pending

P = Performative
BIDDERS = {"bidder-a": 12, "bidder-b": 9, "bidder-c": 15}
PER_CONVERSATION = 18
SIZE = (120, 40)


def conversation(k: int) -> list[Event]:
    """One contract net: 18 events."""
    cid = f"conv-{k:07d}"
    events: list[Event] = []

    def send(m: AclMessage, deliveries: tuple[str, ...], cause: str = "") -> AclMessage:
        events.append(MessageSent(message=m, deliveries=deliveries, cause=cause))
        return m

    def handled(m: AclMessage, agent: str) -> None:
        events.append(MessageHandled(message_id=m.id, conversation_id=cid, agent=agent, replica=0))

    def reply(cause: AclMessage, sender: str, p: P, to: str, content: object) -> AclMessage:
        return AclMessage(
            id=sent_message_id(cause.id, sender, 0),
            performative=p,
            sender=sender,
            receivers=(to,),
            content=json.dumps(content),
            protocol="fipa-contract-net",
            conversation_id=cid,
        )

    ask = send(
        AclMessage(
            id=f"ask-{k}",
            performative=P.REQUEST,
            sender="client:bench",
            receivers=("manager",),
            content='{"task": "buy"}',
            conversation_id=cid,
        ),
        ("manager#0",),
    )
    handled(ask, "manager")
    cfp = AclMessage(
        id=sent_message_id(ask.id, "manager", 0),
        performative=P.CFP,
        sender="manager",
        receivers=("capability:bidding",),
        content='{"task": "buy"}',
        protocol="fipa-contract-net",
        conversation_id=cid,
    )
    send(cfp, tuple(f"{b}#0" for b in BIDDERS), ask.id)
    proposals = []
    for bidder, price in BIDDERS.items():
        handled(cfp, bidder)
        proposals.append(
            send(reply(cfp, bidder, P.PROPOSE, "manager", {"price": price}), ("manager#0",), cfp.id)
        )
    for p in proposals:
        handled(p, "manager")
    best = proposals[1]
    for p in proposals:
        decision = P.ACCEPT_PROPOSAL if p is best else P.REJECT_PROPOSAL
        send(reply(p, "manager", decision, p.sender, {}), (f"{p.sender}#0",), p.id)
    done = send(
        reply(best, best.sender, P.INFORM, "manager", {"done": True}), ("manager#0",), best.id
    )
    handled(done, "manager")
    assert len(events) == PER_CONVERSATION - 1
    events.append(
        MessageSent(
            message=reply(done, "manager", P.INFORM, "client:bench", {"winner": best.sender}),
            deliveries=("client:bench",),
            cause=done.id,
        )
    )
    return events


async def write_log(path: Path, total: int) -> str:
    """A log of `total` events; returns the id of a conversation in its middle."""
    log = await EventLog.open(str(path))
    at = 1_764_000_000_000
    setup: list[Event] = []
    for name, caps in [("manager", ()), *((b, ("bidding",)) for b in BIDDERS)]:
        setup.append(
            AgentDeployed(
                agent=name, component="0" * 64, component_size=1, replicas=1, capabilities=caps
            )
        )
        setup.append(AgentStarted(agent=name, replica=0, incarnation=1))
    await log.append([Pending(e, at) for e in setup])
    count = len(setup)
    k = 0
    while count < total:
        batch: list[Pending] = []
        for _ in range(50):
            batch += [Pending(e, at + k) for e in conversation(k)]
            k += 1
        await log.append(batch)
        count += len(batch)
    await log.close()
    return f"conv-{k // 2:07d}"


def open_bare(path: Path, cid: str) -> float:
    """ms to read and decode a conversation's rows with sqlite3 + orjson."""
    start = time.perf_counter()
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? ORDER BY originator_version",
            (conversation_stream(cid),),
        ).fetchall()
        decoded = [orjson.loads(r[0]) for r in rows]
    assert len(decoded) == PER_CONVERSATION
    return (time.perf_counter() - start) * 1000


async def open_to_first_frame(directory: Path, cid: str) -> float:
    """ms from nothing to the TUI's first frame: open the log, load the recording, mount
    the app and draw every pane."""
    from tui.replay import ReplayApp

    start = time.perf_counter()
    source = await LogSource.open(directory)
    found, _ = await recording(source, cid)
    app = ReplayApp(found)
    elapsed = 0.0
    async with app.run_test(size=SIZE) as pilot:
        await pilot._wait_for_screen()
        app.screen._on_timer_update()  # compose and paint now
        elapsed = (time.perf_counter() - start) * 1000
    await source.close()
    return elapsed


async def empty_app_first_frame() -> float:
    """ms to the first frame of a Textual app showing one line: Textual's own start-up."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("hello")

    start = time.perf_counter()
    app = Empty()
    async with app.run_test(size=SIZE) as pilot:
        await pilot._wait_for_screen()
        app.screen._on_timer_update()
        return (time.perf_counter() - start) * 1000


async def steps(
    directory: Path, cid: str, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """ms per step forward and per step back: the key's action, every pending message of
    every widget processed, and the screen composed and painted (what the user waits
    for; Textual's own frame pacing excluded)."""
    from tui.replay import ReplayApp

    source = await LogSource.open(directory)
    found, _ = await recording(source, cid)
    await source.close()
    app = ReplayApp(found)
    forward: list[float] = []
    back: list[float] = []

    cpu: list[float] = []

    async def one(pilot: Pilot[None], delta: int) -> float:
        start, used = time.perf_counter(), time.process_time()
        app.action_step(delta)
        await pilot._wait_for_screen()
        app.screen._on_timer_update()  # compose and paint now
        cpu.append((time.process_time() - used) * 1000)
        return (time.perf_counter() - start) * 1000

    async with app.run_test(size=SIZE) as pilot:
        for _ in range(rounds):
            await pilot.press("home")
            await pilot.pause()
            forward += [await one(pilot, 1) for _ in range(PER_CONVERSATION - 1)]
            back += [await one(pilot, -1) for _ in range(PER_CONVERSATION - 1)]
    return forward, back, cpu


def step_floor(directory: Path, cid: str) -> float:
    """ms to fold one event into the world (what a step must compute at least)."""

    async def load() -> Recording:
        source = await LogSource.open(directory)
        found, _ = await recording(source, cid)
        await source.close()
        return found

    found: Recording = run_async(load())
    samples = []
    for _ in range(50):
        world = found.prelude
        for recorded in found.events:
            start = time.perf_counter()
            world = evolve(world, recorded)
            samples.append((time.perf_counter() - start) * 1000)
    return median(samples)


async def fold_replay(directory: Path) -> float:
    """Events/s of the whole log read by the replay loader (read-only) and folded."""
    source = await LogSource.open(directory)
    with paused_collector():  # as bench.eventlog's fold and floor run
        start = time.perf_counter()
        live, count = LiveWorld(), 0
        async for page in source.log.pages():
            for recorded in page:
                live.apply(recorded)
            count += len(page)
        world = live.snapshot()
        elapsed = time.perf_counter() - start
    await source.close()
    assert "manager" in world.agents
    return count / elapsed


def run(quick: bool) -> list[Result]:
    total = 100_000 if quick else 1_000_000
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="caxton-bench-replay-") as tmp:
        directory = Path(tmp)
        written = time.perf_counter()
        cid = run_async(write_log(directory / "events.db", total))
        print(f"  ({total:,} events written in {time.perf_counter() - written:.0f} s)", flush=True)
        opened = [run_async(open_to_first_frame(directory, cid)) for _ in range(runs)]
        bare = [open_bare(directory / "events.db", cid) for _ in range(runs)]
        empty = [run_async(empty_app_first_frame()) for _ in range(runs)]
        forward, back, cpu = run_async(steps(directory, cid, rounds=3 if quick else 10))
        floor_step = step_floor(directory, cid)
        folds = [run_async(fold_replay(directory)) for _ in range(2 if quick else 3)]
        bare_folds = [fold_bare(directory) for _ in range(2 if quick else 3)]
    out = [
        result(
            "replay_open_first_frame",
            unit="ms",
            median=median(opened),
            p99=max(opened),
            floor=("bare sqlite3 query + orjson decode of the conversation", median(bare)),
            target={"median_ms": 200},
            met=median(opened) <= 200,
            events=total,
            textual_empty_app_ms=median(empty),
            note=f"open a conversation in a {total:,}-event log to the TUI's first frame "
            "(headless, 120x40): log opened, recording loaded, app mounted, every pane drawn; "
            "textual_empty_app_ms is a one-line Textual app's first frame in the same run",
        ),
        result(
            "replay_step_forward",
            unit="ms",
            median=median(forward),
            p99=pct(forward, 0.99),
            floor=("fold one event (evolve)", floor_step),
            target={"median_ms": 16},
            met=median(forward) <= 16,  # the target as labelled; the p99 is reported beside
            cpu_median_ms=median(cpu),
            note="one → in the TUI: cursor moved, every pane recomputed, what changed "
            "redrawn; cpu_median_ms is this process's CPU time per step (forward and back), "
            "which other load on the machine does not inflate",
            samples={"caxton": forward},
        ),
        result(
            "replay_step_back",
            unit="ms",
            median=median(back),
            p99=pct(back, 0.99),
            floor=("one step forward, same run", median(forward)),
            target={"median_ms": 16, "same_as_forward": True},
            met=median(back) <= 16 and median(back) <= 1.25 * median(forward),
            note="one ← in the TUI: the state is the fold kept for that step, nothing re-run",
            samples={"caxton": back},
        ),
        result(
            "replay_fold_whole_log",
            unit="events/s",
            median=median(folds),
            higher_is_better=True,
            floor=("bare sqlite3 read + orjson decode + dict fold", median(bare_folds)),
            target={"share_of_floor": FOLD_SHARE_OF_FLOOR},  # issue 13: 100,000 events/s
            met=median(folds) >= FOLD_SHARE_OF_FLOOR * median(bare_folds),
            events=total,
            note="the whole log read by the replay loader (read-only) and folded into the world in "
            "place (LiveWorld); both sides with the cyclic collector paused",
        ),
    ]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 events, fewer runs")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    for row in rows:
        row.pop("samples", None)
        print(json.dumps(row))
    target = write_run("replay", rows, quick=args.quick)
    print(f"✓ wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
