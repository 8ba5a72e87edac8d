"""Contract-net with 3, 30 and 300 bidders: the time from a manager's cfp to its award.

The manager is a client of an in-process node (`client:manager`); the bidders are WAT
agents (tests/wasm/components/bidder.wat) declaring capability `bidding`. One round: the
cfp to `capability:bidding` is committed and broadcast, every bidder's propose is
committed, then the award (accept-proposal to one, reject-proposal to the others) is
committed. Floor: the same fan-out and fan-in over asyncio queues, nothing sandboxed or
logged. Peers: Thespian actors and SPADE agents (one process, SPADE's container).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path

from bench import peers
from bench.runtime import FAST, close, fresh_node
from bench.scenario import Result, median, pct, repeat, result, run_async
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import MessageSent, Recorded
from caxton.shell.runtime.node import DeploySpec
from tests.support import wat

PROTOCOL = "fipa-contract-net"
ANSWERS = (Performative.PROPOSE, Performative.FAILURE)


async def floor_fan_out(bidders: int, rounds: int) -> list[float]:
    """µs per round of cfp to `bidders` coroutines, their proposals back, then the award."""
    inboxes: list[asyncio.Queue[tuple[str, int]]] = [asyncio.Queue() for _ in range(bidders)]
    manager: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    async def bidder(number: int) -> None:
        while True:
            performative, round_ = await inboxes[number].get()
            if performative == "cfp":
                manager.put_nowait((number, round_))

    tasks = [asyncio.create_task(bidder(i)) for i in range(bidders)]
    samples = []
    for r in range(rounds + 3):
        start = time.perf_counter()
        for inbox in inboxes:
            inbox.put_nowait(("cfp", r))
        proposals = [await manager.get() for _ in range(bidders)]
        best = min(proposals)[0]
        for number, inbox in enumerate(inboxes):
            inbox.put_nowait(("accept" if number == best else "reject", r))
        if r >= 3:
            samples.append((time.perf_counter() - start) * 1e6)
    for task in tasks:
        task.cancel()
    return samples


async def contract_net(directory: Path, bidders: int, rounds: int) -> list[float]:
    node, log, host = await fresh_node(directory)
    await asyncio.gather(*(node.deploy(_spec(f"bidder{i}")) for i in range(bidders)))
    answers: list[AclMessage] = []  # proposals, or the platform's failure for a bidder
    enough = asyncio.Event()
    wanted = [""]

    def seen(recorded: Recorded) -> None:  # a node observer: every committed event
        event = recorded.event
        if (
            isinstance(event, MessageSent)
            and event.message.performative in ANSWERS
            and event.message.conversation_id == wanted[0]
        ):
            answers.append(event.message)
            if len(answers) == bidders:
                enough.set()

    node.observers.append(seen)
    samples = []
    for r in range(rounds + 3):
        answers.clear()
        enough.clear()
        conversation = f"cnet-{r}"
        wanted[0] = conversation
        start = time.perf_counter()
        await node.send(_message(Performative.CFP, ("capability:bidding",), conversation))
        await asyncio.wait_for(enough.wait(), timeout=60)
        proposals = [a for a in answers if a.performative is Performative.PROPOSE]
        if not proposals:
            continue  # every bidder failed this round (a loaded machine): no award to time
        best, *rest = proposals
        await node.send(
            _message(Performative.ACCEPT_PROPOSAL, (best.sender,), conversation, best.id)
        )
        if rest:
            await node.send(
                _message(Performative.REJECT_PROPOSAL, tuple(p.sender for p in rest), conversation)
            )
        if r >= 3:
            samples.append((time.perf_counter() - start) * 1e6)
    await close(node, log, host)
    return samples


def _spec(name: str) -> DeploySpec:
    return DeploySpec(name=name, component=wat("bidder"), capabilities=("bidding",), limits=FAST)


def _message(
    performative: Performative, to: tuple[str, ...], conversation: str, in_reply_to: str = ""
) -> AclMessage:
    return AclMessage(
        id="",
        performative=performative,
        sender="client:manager",
        receivers=to,
        content="{}",
        protocol=PROTOCOL,
        conversation_id=conversation,
        in_reply_to=in_reply_to,
    )


def run(quick: bool) -> list[Result]:
    return list(run_async(_run(quick)))


async def _run(quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    out = []
    for bidders, rounds in ((3, 200), (30, 60), (300, 15)):
        if quick:
            rounds //= 3
        floor = await floor_fan_out(bidders, rounds * 5)
        found = {"thespian": peers.measure("thespian-cnet", bidders, rounds * 5)}
        if quick and bidders >= 300:
            found["spade"] = {"error": "not run with --quick (starting 300 SPADE agents)"}
        else:
            found["spade"] = peers.measure("spade-cnet", bidders, max(5, rounds // 2))
        ours = await repeat(runs, partial(contract_net, bidders=bidders, rounds=rounds))
        samples: dict[str, list[float]] = {"caxton": ours[-1], "floor: asyncio queues": floor}
        for name, figures in found.items():
            if "samples" in figures:
                samples[name] = figures.pop("samples")
        out.append(
            result(
                f"contract_net_{bidders}_bidders",
                unit="µs",
                median=median(pct(r, 0.5) for r in ours),
                p99=median(pct(r, 0.99) for r in ours),
                floor=("the same fan-out and fan-in over asyncio queues", pct(floor, 0.5)),
                peers=found,
                target=None,
                met=None,
                bidders=bidders,
                samples=samples,
                note=(
                    "cfp to capability:bidding, every propose, then the award, all committed; "
                    "no target in the issue (reported for comparison)"
                ),
            )
        )
    return out
