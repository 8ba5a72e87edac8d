"""The peers, each measured in a fresh interpreter: SPADE (with its embedded XMPP server) and
Thespian, doing what Caxton does in the same scenario.

    .venv/bin/python -m bench.peers spade-local|spade-xmpp|thespian N
    .venv/bin/python -m bench.peers spade-cnet|thespian-cnet BIDDERS ROUNDS

prints a JSON list of latencies in µs on its last line. `measure()` runs that and returns
`{"median": …, "p99": …, "samples": […]}`, or `{"error": "…"}` when the peer is not
installed (`pip install -e '.[bench]'`) or cannot run here.

SPADE routes messages between agents of one process through its in-process container,
never touching the XMPP socket; `spade-local` measures that, `spade-xmpp` puts the echo
agent (and the embedded server) in a second process, so that every message crosses XMPP,
which is how SPADE agents on different hosts or processes talk.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.scenario import pct

ROOT = Path(__file__).parents[1]
TIMEOUT_S = 600


def measure(kind: str, *args: int) -> dict[str, Any]:
    """Runs one peer scenario in a fresh interpreter; its samples, or the reason it failed."""
    command = [sys.executable, "-m", "bench.peers", kind, *map(str, args)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{kind} did not finish within {TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{kind} failed (exit {done.returncode}): {last}"}
    samples = [float(s) for s in json.loads(lines[-1])]
    return {"median": pct(samples, 0.5), "p99": pct(samples, 0.99), "samples": samples}


# --- SPADE ------------------------------------------------------------------


def _spade_server(port: int) -> Any:
    import loguru
    from pyjabber.server import Server
    from pyjabber.server_parameters import Parameters

    loguru.logger.remove()  # the server logs every stanza otherwise
    return Server(
        Parameters(
            host="localhost", client_port=port, server_port=port + 1, database_in_memory=True
        )
    )


def _spade_echo_class() -> Any:
    from spade.agent import Agent
    from spade.behaviour import CyclicBehaviour

    class Echo(Agent):  # type: ignore[misc]
        """Answers every request with an inform carrying the same body and thread."""

        class Answer(CyclicBehaviour):  # type: ignore[misc]
            async def run(self) -> None:
                message = await self.receive(timeout=60)
                if message is not None:
                    reply = message.make_reply()
                    reply.set_metadata("performative", "inform")
                    reply.body = message.body
                    await self.send(reply)

        async def setup(self) -> None:
            self.add_behaviour(self.Answer())

    return Echo


async def _spade_ping(asker: Any, n: int, to: str) -> list[float]:
    from spade.behaviour import OneShotBehaviour
    from spade.message import Message

    samples: list[float] = []

    class Ping(OneShotBehaviour):  # type: ignore[misc]
        async def run(self) -> None:
            for i in range(n + 200):
                message = Message(to=to, body="{}", thread=f"c{i}")
                message.set_metadata("performative", "request")
                start = time.perf_counter()
                await self.send(message)
                reply = await self.receive(timeout=10)
                elapsed = (time.perf_counter() - start) * 1e6
                assert reply is not None, "no reply within 30 s"
                if i >= 200:  # warm-up
                    samples.append(elapsed)

    behaviour = Ping()
    asker.add_behaviour(behaviour)
    await behaviour.join()
    return samples


async def spade_local(n: int) -> list[float]:
    """Request → inform between two SPADE agents in one process (SPADE's container)."""
    from spade.agent import Agent

    from tests.support import free_port

    port = free_port()
    server = _spade_server(port)
    serving = asyncio.create_task(server.start())
    await server.ready.wait()
    echo = _spade_echo_class()("echo@localhost", "secret", port=port)
    asker = Agent("asker@localhost", "secret", port=port)
    await echo.start(auto_register=True)
    await asker.start(auto_register=True)
    samples = await _spade_ping(asker, n, "echo@localhost")
    await asker.stop()
    await echo.stop()
    serving.cancel()
    return samples


async def spade_echo_process(port: int) -> None:
    """The other side of `spade_xmpp`: the embedded server and the echo agent."""
    server = _spade_server(port)
    serving = asyncio.create_task(server.start())
    await server.ready.wait()
    echo = _spade_echo_class()("echo@localhost", "secret", port=port)
    await echo.start(auto_register=True)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await echo.stop()
    serving.cancel()


async def spade_xmpp(n: int) -> list[float]:
    """Request → inform between SPADE agents in two processes: every message over XMPP."""
    from spade.agent import Agent

    from tests.support import free_port

    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "bench.peers", "spade-echo", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert other.stdout is not None
        if other.stdout.readline().strip() != "ready":
            raise RuntimeError("the SPADE echo process did not start")
        asker = Agent("asker@localhost", "secret", port=port)
        await asker.start(auto_register=True)
        samples = await _spade_ping(asker, n, "echo@localhost")
        await asker.stop()
    finally:
        if other.stdin is not None:
            other.stdin.close()
        try:
            other.wait(timeout=10)
        except subprocess.TimeoutExpired:
            other.kill()
    return samples


async def spade_contract_net(bidders: int, rounds: int) -> list[float]:
    """µs from a manager's cfp to its award (accept to the best, reject to the others), with
    `bidders` SPADE agents proposing, all in one process."""
    from spade.agent import Agent
    from spade.behaviour import CyclicBehaviour, OneShotBehaviour
    from spade.message import Message

    from tests.support import free_port

    class Bidder(Agent):  # type: ignore[misc]
        class Bid(CyclicBehaviour):  # type: ignore[misc]
            async def run(self) -> None:
                message = await self.receive(timeout=60)
                if message is not None and message.get_metadata("performative") == "cfp":
                    reply = message.make_reply()
                    reply.set_metadata("performative", "propose")
                    reply.body = json.dumps({"price": len(str(self.agent.jid))})
                    await self.send(reply)

        async def setup(self) -> None:
            self.add_behaviour(self.Bid())

    port = free_port()
    server = _spade_server(port)
    serving = asyncio.create_task(server.start())
    await server.ready.wait()
    agents = [Bidder(f"bidder{i}@localhost", "secret", port=port) for i in range(bidders)]
    manager = Agent("manager@localhost", "secret", port=port)
    for agent in [*agents, manager]:
        await agent.start(auto_register=True)
    samples: list[float] = []

    class Manage(OneShotBehaviour):  # type: ignore[misc]
        async def run(self) -> None:
            for r in range(rounds + 3):
                start = time.perf_counter()
                for agent in agents:
                    cfp = Message(to=str(agent.jid), body="{}", thread=f"cnet-{r}")
                    cfp.set_metadata("performative", "cfp")
                    await self.send(cfp)
                proposals = []
                while len(proposals) < bidders:
                    proposal = await self.receive(timeout=30)
                    assert proposal is not None, "a bidder did not answer within 30 s"
                    proposals.append(proposal)
                best = min(proposals, key=lambda p: json.loads(p.body)["price"])
                for proposal in proposals:
                    award = proposal.make_reply()
                    chosen = proposal is best
                    award.set_metadata(
                        "performative", "accept-proposal" if chosen else "reject-proposal"
                    )
                    await self.send(award)
                if r >= 3:
                    samples.append((time.perf_counter() - start) * 1e6)

    behaviour = Manage()
    manager.add_behaviour(behaviour)
    await behaviour.join()
    for agent in [*agents, manager]:
        await agent.stop()
    serving.cancel()
    return samples


# --- Thespian ---------------------------------------------------------------


def thespian_ping_pong(n: int) -> list[float]:
    """Round trips between two Thespian actors in one process (its simple system base)."""
    from thespian.actors import Actor, ActorSystem

    class Pong(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if isinstance(message, tuple) and message[0] == "request":
                self.send(sender, ("inform", message[1]))

    class Ping(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if isinstance(message, tuple) and message[0] == "start":
                _, self.n, self.pong = message
                self.asker, self.samples, self.i = sender, [], 0
                self.t = time.perf_counter()
                self.send(self.pong, ("request", 0))
            elif isinstance(message, tuple) and message[0] == "inform":
                self.samples.append((time.perf_counter() - self.t) * 1e6)
                self.i += 1
                if self.i >= self.n:
                    self.send(self.asker, self.samples)
                    return
                self.t = time.perf_counter()
                self.send(self.pong, ("request", self.i))

    system = ActorSystem("simpleSystemBase")
    try:
        ping, pong = system.createActor(Ping), system.createActor(Pong)
        samples: list[float] = system.ask(ping, ("start", n + 200, pong), 120)
    finally:
        system.shutdown()
    return samples[200:]


def thespian_contract_net(bidders: int, rounds: int) -> list[float]:
    """µs from cfp to award with `bidders` Thespian actors proposing, one process."""
    from thespian.actors import Actor, ActorSystem

    class Bidder(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if isinstance(message, tuple) and message[0] == "cfp":
                self.send(sender, ("propose", message[1], id(self) % 97))

    class Manager(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if isinstance(message, tuple) and message[0] == "start":
                _, self.rounds, self.bidders = message
                self.asker, self.samples, self.round = sender, [], 0
                self._cfp()
            elif isinstance(message, tuple) and message[0] == "propose":
                self.proposals.append((message[2], sender))
                if len(self.proposals) < len(self.bidders):
                    return
                best = min(self.proposals, key=lambda p: p[0])
                for proposal in self.proposals:
                    verdict = "accept-proposal" if proposal is best else "reject-proposal"
                    self.send(proposal[1], (verdict, self.round))
                self.samples.append((time.perf_counter() - self.t) * 1e6)
                self.round += 1
                if self.round >= self.rounds:
                    self.send(self.asker, self.samples)
                else:
                    self._cfp()

        def _cfp(self) -> None:
            self.proposals: list[tuple[int, Any]] = []
            self.t = time.perf_counter()
            for bidder in self.bidders:
                self.send(bidder, ("cfp", self.round))

    system = ActorSystem("simpleSystemBase")
    try:
        actors = [system.createActor(Bidder) for _ in range(bidders)]
        manager = system.createActor(Manager)
        samples: list[float] = system.ask(manager, ("start", rounds + 3, actors), 300)
    finally:
        system.shutdown()
    return samples[3:]


def main(argv: list[str]) -> None:
    kind, numbers = argv[0], [int(a) for a in argv[1:]]
    if kind == "spade-echo":
        import spade

        spade.run(spade_echo_process(numbers[0]))
        return
    samples: list[float]
    if kind == "thespian":
        samples = thespian_ping_pong(numbers[0])
    elif kind == "thespian-cnet":
        samples = thespian_contract_net(numbers[0], numbers[1])
    else:
        import spade

        found: list[float] = []

        async def go() -> None:
            try:
                await dispatch()
            except BaseException as e:  # spade.run only logs what its coroutine raises
                print(f"{kind}: {type(e).__name__}: {e}", file=sys.stderr)
                raise

        async def dispatch() -> None:
            if kind == "spade-local":
                found.extend(await spade_local(numbers[0]))
            elif kind == "spade-xmpp":
                found.extend(await spade_xmpp(numbers[0]))
            elif kind == "spade-cnet":
                found.extend(await spade_contract_net(numbers[0], numbers[1]))
            else:
                raise SystemExit(f"unknown peer scenario {kind!r}")

        spade.run(go())
        samples = found
    if not samples:
        raise SystemExit(f"{kind}: no samples")
    print(json.dumps(samples))


if __name__ == "__main__":
    main(sys.argv[1:])
