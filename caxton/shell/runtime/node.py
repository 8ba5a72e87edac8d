"""The node: one loop that gathers inputs, asks the domain, commits, folds, and acts.

    inputs ──▶ decide ──▶ commit ──▶ fold ──▶ effects
    (client sends,      (caxton.domain.   (one         (LiveWorld  (deliveries, replies to
     guest calls that    handling)         transaction)  .apply)     waiting clients,
     returned, events                                                restarts, agents' logs)
     decided elsewhere)

A round takes every input that arrived since the last one, decides them, and then calls
idle minimal agents inline: first on committed messages waiting in their mailboxes, then
on messages this very round sends them (ADR 0017): a request, its handling and the
reply commit in one transaction, and nothing of it is seen outside before that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from caxton import __version__
from caxton.domain.acl import AclMessage
from caxton.domain.agents import Agents, AgentState, runs
from caxton.domain.delivery import NO_PENDING, PendingDeliveries, in_log_order, settle
from caxton.domain.events import (
    AgentDeployed,
    AgentReconfigured,
    AgentRemoved,
    AgentStopped,
    Event,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
)
from caxton.domain.frozen import positional
from caxton.domain.handling import (
    Accept,
    Append,
    Decision,
    Deliver,
    Effect,
    Input,
    Outcome,
    Reply,
    Supervise,
    Undelivered,
    decide,
    followed,
)
from caxton.domain.ids import is_client, split_instance_key
from caxton.domain.memory import Plan
from caxton.domain.placement import shard_of
from caxton.domain.routing import NO_CURSOR
from caxton.domain.world import LiveWorld, World
from caxton.shell.runtime.actor import InstanceActor
from caxton.shell.runtime.clients import ClientSends, SendResult
from caxton.shell.runtime.clock import Clock
from caxton.shell.runtime.collector import paused_collector
from caxton.shell.runtime.context import CallContext
from caxton.shell.runtime.deployments import Deployments, DeploySpec
from caxton.shell.runtime.errors import LogFailed, LogUnreachable, NodeStopping
from caxton.shell.runtime.memory import read_plan
from caxton.shell.runtime.ports import Ownership
from caxton.shell.store import EventLog, LeaseLost, Pending, StoreError
from caxton.shell.tools import ToolCaller
from caxton.shell.wasm import WasmHost

__all__ = ["DeploySpec", "Node", "SendResult"]

logger = logging.getLogger("caxton.runtime")

ROUND_HANDLINGS = 256
"""Inline handlings in one round, at most: bounds a transaction and the loop's stall."""

_RECENT = 50_000  # clients' messages recalled at start for idempotent retries


@dataclass(slots=True)
class _Submission:
    """Inputs from one caller, and the future that hears of their commit."""

    first: int
    count: int
    future: asyncio.Future[list[Recorded]] | asyncio.Future[list[Outcome]]
    outcome: bool  # the future wants its inputs' outcomes, not their events


class Node:
    """One Caxton server's runtime."""

    def __init__(
        self,
        *,
        log: EventLog,
        host: WasmHost,
        clock: Clock,
        node_id: str,
        address: str = "",
        max_content_bytes: int = 1 << 20,
        tools: ToolCaller | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.log = log
        self.ownership = ownership
        """In a cluster, the shards this node holds (ADR 0018); None: it runs every agent."""
        self.tools = tools
        self.host = host
        self.clock = clock
        self.node_id = node_id
        self.address = address
        self.max_content_bytes = max_content_bytes
        self._world = LiveWorld()
        self.deployments = Deployments(self)
        self.actors = self.deployments.actors
        """The running instances, by key (`name#replica`): what the loop delivers to."""
        self.clients = ClientSends(clock, self._accept)
        self.observers: list[Callable[[Recorded], None]] = []
        """Called with every event this node commits, in order (metrics, live figures):
        keep cheap."""
        self.followers: list[Callable[[Recorded], None]] = []
        """In a cluster, called with every event other nodes commit, in log order, once
        folded here (live figures of the whole cluster; metrics count only their own)."""
        self._cursor = NO_CURSOR
        self._inputs: list[Input] = []
        self._contexts: list[CallContext] = []
        self._submissions: list[_Submission] = []
        self._in_flight: list[_Submission] = []  # those of the round waiting for its append
        self._ready: dict[str, None] = {}  # instances with queued messages to call inline
        self._work = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self._commit_failed: BaseException | None = None
        self.deposed = asyncio.Event()
        """Set once a node of a cluster stops working: another node took shards it held,
        or its log failed; the server then exits, so that its shards are taken over."""
        # a cluster's node: what other nodes committed, to fold in; deliveries still open
        self._followed: list[Recorded] = []
        self._pending = NO_PENDING
        self._follow_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Event()  # replaced by a fresh one each time the world folds
        self._warming = asyncio.Lock()  # one component compiled ahead of a takeover at a time
        self._fetching: dict[str, asyncio.Future[None]] = {}  # digest: its fetch and compile

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Folds the log, records the start, restarts agents and redelivers what was pending."""
        await self.log.check_integrity()
        world, pending = self._world, NO_PENDING
        recent: deque[Recorded] = deque(maxlen=_RECENT)
        with paused_collector():  # the fold makes only acyclic garbage; the collector cost ~30%
            async for page in self.log.pages():  # page by page: never all of it in memory
                for recorded in page:
                    world.apply(recorded)
                    pending = settle(pending, recorded)
                    event = recorded.event
                    if isinstance(event, MessageSent) and is_client(event.message.sender):
                        recent.append(recorded)
        self.clients.recall(recent)
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._rounds(), name="node")
        if self.ownership is not None:
            self._pending = pending  # kept up to date: a shard claimed later redelivers
            self._follow_task = loop.create_task(self._follow(), name="follow")
        await self.commit(
            [NodeStarted(node=self.node_id, address=self.address, version=__version__)]
        )
        self._started = True
        for name, agent in self._world.agents.items():
            if agent.status == "running" and self.owns(name):
                self.deployments.start(name)
        lost = self._deliver_open(pending, self.owns)  # another node's are its to deliver
        if lost:
            await self.submit(lost)
        if self.ownership is not None:
            others = {a.component for a in self._world.agents.values() if a.status == "running"}
            self._background(self._warm(sorted(others)))
        logger.info(
            "node %s started at position %d with %d agents",
            self.node_id,
            self._world.position,
            len(self._world.agents),
        )

    async def shutdown(self) -> None:
        """Stops the actors (agents stay deployed), hands a cluster's shards over, and
        records the stop."""
        if self._stopping:
            return
        self._stopping = True
        await self.deployments.stop_all()
        self.clients.cancel_waits()
        if self._started and self._commit_failed is None:
            # a stop the log refuses (a full disk) is logged as it fails and reads as a crash
            # later; the server must still close its log and threads (it hung instead)
            with contextlib.suppress(StoreError, LogFailed):
                if self.ownership is not None:
                    await self._settled()  # what the stopped instances handled, fenced
                    await self.ownership.hand_over()  # others claim them now, not in a lease
                await self.commit([NodeStopped(node=self.node_id)])
        for task in (*self._tasks, *self._fetching.values(), self._follow_task, self._loop_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @property
    def world(self) -> World:
        """Everything the log says, as of the last commit: immutable, unchanged by later
        ones (a copy of what changed since the last time it was asked for)."""
        return self._world.snapshot()

    @property
    def agents(self) -> Agents:
        """The agents as of the last commit (without a copy of the conversations)."""
        return self._world.agents

    @property
    def log_failure(self) -> BaseException | None:
        """The failed append that made this node refuse work until restarted, if any."""
        return self._commit_failed

    # --- inputs -----------------------------------------------------------

    def commit(
        self,
        events: Sequence[Event],
        traceparent: str = "",
        *,
        new_streams: Collection[str] = (),
    ) -> asyncio.Future[list[Recorded]]:
        """Appends events decided elsewhere; resolves once committed and folded in.
        `new_streams` are streams known not to be in the log yet (`EventLog.append`)."""
        return self.submit([Append(tuple(events), traceparent, tuple(new_streams))])

    def submit(
        self, inputs: Sequence[Input], contexts: Sequence[CallContext] = ()
    ) -> asyncio.Future[list[Recorded]]:
        """Inputs for the next round; resolves with their events once committed and
        folded in (a caller that stops waiting does not stop the commit)."""
        future: asyncio.Future[list[Recorded]] = asyncio.get_running_loop().create_future()
        self._enqueue(inputs, contexts, future, outcome=False)
        return future

    def ready(self, key: str) -> None:
        if self._commit_failed is None:
            self._ready[key] = None
            self._work.set()

    async def send(self, message: AclMessage, *, wait_ms: int = 0) -> SendResult:
        """Accepts a message from an API client; with `wait_ms`, waits for the reply
        (`ClientSends.send`: retries with the same id are answered, not accepted again)."""
        self.check_running()
        return await self.clients.send(message, wait_ms=wait_ms)

    async def send_many(self, messages: Sequence[AclMessage]) -> list[SendResult | Exception]:
        """Accepts one-way messages from an API client in one batch (`ClientSends.send_many`):
        each result is its `SendResult` or the error that refused that message."""
        self.check_running()
        return await self.clients.send_many(messages)

    def _accept(self, items: Sequence[Accept]) -> asyncio.Future[list[Outcome]]:
        self.check_running()
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._enqueue(items, (), future, outcome=True)
        return future

    def _enqueue(
        self,
        inputs: Sequence[Input],
        contexts: Sequence[CallContext],
        future: asyncio.Future[list[Recorded]] | asyncio.Future[list[Outcome]],
        *,
        outcome: bool,
    ) -> None:
        if self._commit_failed is not None:
            future.set_exception(self._refusal(self._commit_failed))
            return
        self._submissions.append(_Submission(len(self._inputs), len(inputs), future, outcome))
        self._inputs.extend(inputs)
        self._contexts.extend(contexts)
        self._work.set()

    # --- the loop ---------------------------------------------------------

    async def _rounds(self) -> None:
        """Rounds until the log fails; between two rounds the loop runs everything else
        (agents that message each other forever must not starve the API, timers, signals)."""
        while self._commit_failed is None:
            if not (self._inputs or self._ready or self._followed):
                self._work.clear()
                await self._work.wait()
                continue
            inputs, self._inputs = self._inputs, []
            contexts, self._contexts = self._contexts, []
            submissions, self._submissions = self._submissions, []
            self._in_flight = submissions
            try:
                await self._round(inputs, contexts, submissions)
            except asyncio.CancelledError:
                raise
            except Exception as bug:  # the world and the log may differ: as a failed commit
                logger.exception("a round of the node's loop failed")
                self._failed(bug, submissions)
            self._in_flight = []
            await asyncio.sleep(0)

    async def _round(
        self, inputs: list[Input], contexts: list[CallContext], submissions: list[_Submission]
    ) -> None:
        if self._followed:
            followed, self._followed = self._followed, []
            for event in followed:
                self._fold_foreign(event)
            self._moved_on()
        agents = self._world.agents_uncounted  # what routing reads; no copy
        decision = decide(agents, self._cursor, _Room(self.actors), ())
        budget = self._handle_queued(decision, contexts, ROUND_HANDLINGS)
        gathered = len(decision.starts)
        decide(agents, decision.cursor, {}, inputs, into=decision)
        done = self._handle_sent(decision, contexts, budget)
        self._cursor = decision.cursor
        at = self.clock.now_ms()
        pending = [
            _pending(e, at, t) for e, t in zip(decision.events, decision.traceparents, strict=True)
        ]
        try:
            recorded = await self.log.append(
                pending, new_streams=decision.new_streams, now=True, fence=self._fence()
            )
            if recorded and recorded[0].position > self._world.position + 1:
                await self._catch_up(recorded[0].position - 1)  # other nodes committed first
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed(error, submissions)
            return
        if self._commit_failed is not None:
            return  # the node stopped working while it waited: its world is not folded on
        # the fold: the world holds the batch before anyone hears of it
        world, observers = self._world, self.observers
        for event in recorded:
            world.apply(event)
            if self.ownership is not None:
                self._pending = settle(self._pending, event)
            for observe in observers:
                try:
                    observe(event)
                except Exception:  # metrics and figures must not stop the node
                    logger.exception("an observer of committed events failed")
        self._perform(decision.effects, done)
        self._moved_on()
        for context in contexts:
            context.write_logs()
        self._answer(submissions, decision, recorded, gathered)

    def _handle_queued(self, decision: Decision, contexts: list[CallContext], budget: int) -> int:
        """Calls idle minimal instances on the committed messages waiting in their
        mailboxes, at most `budget` of them, taking turns (an instance with more than the
        round's share goes last next round). Returns what is left of the budget."""
        agents = self._world.agents_uncounted
        ready = self._ready
        for key in list(ready):
            del ready[key]
            actor = self.actors.get(key)
            if actor is None:
                continue
            mailbox = actor.mailbox
            while actor.inline and mailbox and budget > 0:
                if key in decision.free:
                    decision.free[key] += 1  # the slot it took is free again
                handled, context = actor.handle_now(mailbox.take())
                decide(agents, decision.cursor, {}, [handled], into=decision)
                contexts.append(context)
                budget -= 1
            if mailbox:
                if actor.inline:
                    ready[key] = None
                else:
                    actor.deliver_queued()  # reconfigured to run on the pool, say
        return budget

    def _handle_sent(
        self, decision: Decision, contexts: list[CallContext], budget: int
    ) -> set[int]:
        """Calls idle minimal instances on what this round sends them, to commit with it
        (ADR 0017): only an instance with nothing waiting in its mailbox, and only until
        one of its deliveries has to wait (so none overtakes another). Returns the
        indexes of the deliveries made, which are not performed after the commit."""
        done: set[int] = set()
        if self._stopping:
            return done
        agents = self._world.agents_uncounted
        waiting: set[str] = set()  # instances whose next message must wait for the commit
        effects = decision.effects
        index = 0
        while index < len(effects) and budget > 0:
            effect = effects[index]
            if isinstance(effect, Deliver) and effect.target not in waiting:
                actor = self.actors.get(effect.target)
                if actor is not None and actor.inline and not actor.mailbox:
                    handled, context = actor.handle_now(effect.message)
                    if effect.target in decision.free:
                        decision.free[effect.target] += 1  # it never took a slot
                    decide(agents, decision.cursor, {}, [handled], into=decision)
                    contexts.append(context)
                    done.add(index)
                    budget -= 1
                else:
                    waiting.add(effect.target)
            index += 1
        return done

    def _perform(self, effects: Sequence[Effect], done: Collection[int] = ()) -> None:
        lost: list[Input] = []
        for index, effect in enumerate(effects):
            if index in done:
                continue
            if isinstance(effect, Deliver):
                if self._stopping:
                    continue  # committed but undelivered: the next start redelivers it
                actor = self.actors.get(effect.target)
                if actor is None and self._delivered_later(effect.target):
                    continue
                refused = actor.deliver(effect.message) if actor else "agent not running"
                if refused:
                    lost.append(Undelivered(effect.message, effect.target, refused))
            elif isinstance(effect, Reply):
                self.clients.reply(effect.client, effect.message)
            elif isinstance(effect, Supervise):
                actor = self.actors.get(f"{effect.agent}#{effect.replica}")
                if actor is not None and not self._stopping:
                    actor.supervise()
        if lost:
            self.submit(lost)

    def _answer(
        self,
        submissions: list[_Submission],
        decision: Decision,
        recorded: list[Recorded],
        first: int,
    ) -> None:
        """Tells each submitter its inputs' outcome or events. The gathered inputs were
        decided from `first` on (after the handlings of queued messages), and before the
        handlings of what the round sent."""
        starts, outcomes = decision.starts, decision.outcomes
        for s in submissions:
            if s.future.done():
                continue  # the caller stopped waiting: its events are committed all the same
            at, end = first + s.first, first + s.first + s.count
            if s.outcome:
                s.future.set_result(outcomes[at:end])  # type: ignore[arg-type]
            else:
                stop = starts[end] if end < len(starts) else len(recorded)
                s.future.set_result(recorded[starts[at] : stop])  # type: ignore[arg-type]

    def _failed(self, error: BaseException, submissions: list[_Submission]) -> None:
        """The log and this node's world may now differ: refuse all work until a restart
        (no further round, no inline handling, actors stop taking messages)."""
        self._commit_failed = error
        logger.error("the node refuses all work from now on: %s", error)
        if self.ownership is not None or isinstance(error, LeaseLost):
            self.deposed.set()  # a cluster's node stops, so that its shards are taken over
        # the round in flight too: its append may hang on a cut network for ever
        for s in (*submissions, *self._in_flight, *self._submissions):
            if not s.future.done():
                s.future.set_exception(error if s in submissions else self._refusal(error))
                s.future.exception()
        self._submissions, self._inputs, self._contexts = [], [], []
        self._ready.clear()

    # --- the cluster (ADR 0018) ---------------------------------------------

    def owns(self, agent: str) -> bool:
        """Whether this node runs `agent`: always, unless it is a node of a cluster that
        does not hold the agent's shard."""
        return self.ownership is None or self.ownership.owns(agent)

    def _refusal(self, failure: BaseException) -> LogFailed:
        return LogFailed(failure, rejoins=self.ownership is not None)

    def _fence(self) -> Mapping[int, int]:
        return {} if self.ownership is None else self.ownership.fence

    async def _follow(self) -> None:
        """Hands the loop what other nodes commit, in log order. A node that can no
        longer read the log stops (deliveries and replies from other nodes would never
        come), like one that can no longer append."""
        try:
            async for recorded in self.log.follow(from_position=self._world.position + 1):
                if recorded.position > self._world.position:  # not one of this node's own
                    self._followed.append(recorded)
                    self._work.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.error("following the log failed: %s", error)
            if self._commit_failed is None:
                self._failed(error, [])

    async def _catch_up(self, to_position: int) -> None:
        """Folds what other nodes committed before this round's batch: positions are one
        order across the cluster, and the world folds them in that order."""
        while self._world.position < to_position:
            missing = to_position - self._world.position
            rows = await self.log.read(from_position=self._world.position + 1, limit=missing)
            if not rows:
                raise StoreError(self.log.where, f"positions up to {to_position} are not readable")
            for recorded in rows:
                self._fold_foreign(recorded)

    def _fold_foreign(self, recorded: Recorded) -> None:
        """An event another node committed: folded in, then what it asks of this node
        done (deliveries to the instances it runs, replies to its waiting clients, an
        agent it runs deployed, stopped, removed or reconfigured elsewhere)."""
        if recorded.position <= self._world.position:
            return  # folded already (the follower and a catch-up both saw it)
        self._world.apply(recorded)
        self._pending = settle(self._pending, recorded)
        for observe in self.followers:
            try:
                observe(recorded)
            except Exception:
                logger.exception("an observer of committed events failed")
        event = recorded.event
        if isinstance(event, MessageSent) and is_client(event.message.sender):
            self.clients.recall([recorded])  # a retry through this node is answered, not sent
        if isinstance(event, AgentDeployed | AgentStopped | AgentRemoved | AgentReconfigured):
            if self.owns(event.agent) and not self._stopping:
                self._background(self.deployments.follow(event))
            elif isinstance(event, AgentDeployed) and not self._stopping:
                self._background(self._warm([event.component]))
        else:
            self._perform(followed(event))

    async def share_component(self, digest: str, wasm: bytes) -> None:
        """In a cluster, a deployed component goes where every node can fetch it (the
        shared log's database): the node holding the agent's shard may be another."""
        if self.ownership is not None:
            await self.log.put_component(digest, wasm)

    async def fetch_component(self, digest: str) -> None:
        """In a cluster, a component deployed on another node is fetched from the shared
        log's database and compiled (off the loop) before its agent starts here; once,
        when a takeover finds it being prepared ahead."""
        if self.ownership is None or self.host.cache.has(digest):
            return
        fetching = self._fetching.get(digest)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(digest))
            self._fetching[digest] = fetching
            fetching.add_done_callback(lambda _: self._fetching.pop(digest, None))
        await asyncio.shield(fetching)

    async def _fetch(self, digest: str) -> None:
        wasm = await self.log.get_component(digest)
        if wasm is not None:  # a daemon thread: a stopping server does not wait for it
            await _in_daemon_thread(partial(self.host.load, wasm, f"{digest}.wasm"))

    async def _warm(self, digests: Sequence[str]) -> None:
        """Fetches and compiles the components of agents another node runs, in the
        background and one at a time: a takeover then starts them at once (a Python
        agent's component takes 15-30 s of CPU to compile)."""
        async with self._warming:
            for digest in digests:
                try:
                    await self.fetch_component(digest)
                except Exception as e:  # a takeover fetches it again, and says why
                    logger.warning("could not prepare component %s: %s", digest[:12], e)

    def shard_claimed(self, shard: int, position: int) -> None:
        """This node now holds `shard` (claimed at `position`): it starts the shard's
        running agents and delivers what is open for them, in the background (the lease
        keeper must go on renewing meanwhile)."""
        if not self._stopping and self._commit_failed is None:
            self._background(self._take_over(shard, position))

    async def _take_over(self, shard: int, position: int) -> None:
        # what is open is known once everything before the claim is folded: the previous
        # holder could commit nothing after it (its appends are fenced), so none of its
        # handlings is redelivered
        while self._world.position < position:
            await self._progress.wait()  # set each time the world folds more of the log
        for name in [name for name in self._world.agents if shard_of(name) == shard]:
            await self.deployments.take_over(name)

    def redeliver(self, agent: str) -> None:
        """Delivers what is open for `agent`'s instances, in log order: right after they
        started on this node (in the same step, so that nothing folded since is
        delivered twice)."""
        lost = self._deliver_open(self._pending, lambda name: name == agent)
        if lost:
            self.submit(lost)

    def _deliver_open(
        self, pending: PendingDeliveries, agents: Callable[[str], bool]
    ) -> list[Input]:
        """Delivers the open deliveries to instances of the `agents` this node runs, in
        log order, even to a full mailbox (an accepted message is never dropped for
        that); returns those it could not deliver."""
        lost: list[Input] = []
        for message, target in in_log_order(pending):
            if not agents(split_instance_key(target)[0]):
                continue
            actor = self.actors.get(target)
            refused = actor.deliver(message, force=True) if actor else "agent not running"
            if refused:
                lost.append(Undelivered(message, target, refused))
        return lost

    def _delivered_later(self, target: str) -> bool:
        """A delivery with no instance here that is not dead-lettered: its agent's shard
        is another node's, or it is this node's and its instance is starting (the message
        stays open in the log, and is delivered when it has started)."""
        name, replica = split_instance_key(target)
        if not self.owns(name):
            return True
        if self.ownership is None:
            return False
        agent = self._world.agents.get(name)
        return agent is not None and runs(agent, replica)

    async def shard_releasing(self, shard: int) -> None:
        """This node is giving `shard` up: it stops the shard's instances (what their
        mailboxes hold stays open in the log, for the next holder to deliver) and waits
        until what they handled is committed, under the shard's fence; the keeper then
        records the release and frees the lease in one transaction."""
        await self.deployments.stop_shard(shard)
        await self._settled()

    async def _settled(self) -> None:
        """Returns once everything submitted so far is committed (a round with nothing
        of its own runs after theirs), or refused."""
        with contextlib.suppress(StoreError, LogFailed, NodeStopping):
            await self.commit([])

    def shards_lost(self, shards: Collection[int], why: str) -> None:
        """Shards were taken while this node believed it held them (it was paused, or cut
        off from the log), or the log stopped answering: its instances' memory may be
        ahead of the log, so it refuses all work (the server restarts it to rejoin)."""
        if self._commit_failed is None:
            self._failed(LeaseLost(self.log.where, frozenset(shards), why), [])

    def _moved_on(self) -> None:
        """Wakes whoever waits for the world to fold further (a takeover, in a cluster)."""
        if self.ownership is not None:
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    def _background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- agents (caxton.shell.runtime.deployments) ---------------------------

    async def deploy(self, spec: DeploySpec) -> None:
        await self.deployments.deploy(spec)

    async def stop_agent(self, name: str) -> None:
        await self.deployments.stop_agent(name)

    async def remove_agent(self, name: str) -> None:
        await self.deployments.remove_agent(name)

    async def reconfigure(self, change: AgentReconfigured) -> AgentState:
        return await self.deployments.reconfigure(change)

    @property
    def unreachable(self) -> str:
        """Why this node of a cluster cannot reach the shared log; "" while it can."""
        return "" if self.ownership is None else self.ownership.unreachable

    async def memory_plan(self, agent: str, replica: int) -> Plan | None:
        return await read_plan(self.log, agent, replica)

    def check_running(self) -> None:
        if self._stopping:
            raise NodeStopping()
        if self._commit_failed is not None:
            raise self._refusal(self._commit_failed)
        if self.unreachable:
            raise LogUnreachable(self.node_id, self.unreachable)


def _in_daemon_thread(work: Callable[[], object]) -> asyncio.Future[None]:
    """Runs `work` in a daemon thread of its own (asyncio.to_thread's threads are waited
    for at exit: a compile of a Python agent would hold a stopping server 15-30 s)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def tell(error: BaseException | None) -> None:
        if not done.done():
            done.set_result(None) if error is None else done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            work()
        except BaseException as e:
            error = e
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(tell, error)

    threading.Thread(target=run, name="caxton-compile-ahead", daemon=True).start()
    return done


# Pending(...) without its frozen __init__: one per event committed
_pending: Callable[[Event, int, str], Pending] = positional(Pending)


class _Room(Mapping[str, tuple[int, int]]):
    """(free slots, size) of each running instance's mailbox, read when a decision first
    asks about it: a round costs nothing per idle instance."""

    __slots__ = ("_actors",)

    def __init__(self, actors: dict[str, InstanceActor]) -> None:
        self._actors = actors

    def __getitem__(self, key: str) -> tuple[int, int]:
        mailbox = self._actors[key].mailbox
        return mailbox.maxsize - mailbox.qsize(), mailbox.maxsize

    def __iter__(self) -> Iterator[str]:
        return iter(self._actors)

    def __len__(self) -> int:
        return len(self._actors)
