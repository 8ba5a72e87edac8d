"""Builders of recorded logs for the domain tests, and a Hypothesis strategy of plausible ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from caxton.domain import (
    AclMessage,
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    Event,
    HostCall,
    MemberChanged,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Performative,
    Recorded,
    RestartPolicy,
    ShardClaimed,
    ShardReleased,
    stream_of,
)

P = Performative


@dataclass
class Log:
    """Appends events as the store would: increasing positions, per-stream versions, a clock."""

    at: int = 1_000
    recorded: list[Recorded] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def add(self, event: Event, *, at: int | None = None) -> Recorded:
        if at is not None:
            self.at = at
        stream = stream_of(event)
        self.versions[stream] = self.versions.get(stream, 0) + 1
        recorded = Recorded(
            position=len(self.recorded) + 1,
            stream=stream,
            version=self.versions[stream],
            at=self.at,
            event=event,
        )
        self.recorded.append(recorded)
        return recorded

    def send(
        self,
        performative: Performative,
        sender: str,
        *receivers: str,
        conversation: str = "c1",
        protocol: str = "",
        reply_by: int | None = None,
        deliveries: tuple[str, ...] | None = None,
        at: int | None = None,
    ) -> Recorded:
        message = AclMessage(
            id=f"m{len(self.recorded) + 1}",
            performative=performative,
            sender=sender,
            receivers=receivers,
            protocol=protocol,
            conversation_id=conversation,
            reply_by=reply_by,
        )
        if deliveries is None:
            deliveries = tuple(r if r.startswith("client:") else f"{r}#0" for r in receivers)
        return self.add(MessageSent(message=message, deliveries=deliveries), at=at)


def message(performative: Performative = P.INFORM, **changes: Any) -> AclMessage:
    fields: dict[str, Any] = {"id": "m1", "sender": "alice", "receivers": ("bob",)}
    fields.update(changes)
    return AclMessage(performative=performative, **fields)


AGENTS = ("alpha", "beta", "gamma", "delta")
CAPABILITIES = ("search", "pricing")
NODES = ("node-a", "node-b")
PROTOCOL_NAMES = ("fipa-request", "fipa-query", "fipa-contract-net", "")

Draw = Callable[[st.SearchStrategy[Any]], Any]
Script = list[tuple[str, Performative, tuple[str, ...], int | None]]


def _request_script(draw: Draw, initiator: str, participant: str, opening: Performative) -> Script:
    ask: Script = [(initiator, opening, (participant,), None)]
    answers = draw(
        st.sampled_from(
            [
                [P.AGREE, P.INFORM],
                [P.AGREE, P.FAILURE],
                [P.REFUSE],
                [P.INFORM],
                [P.NOT_UNDERSTOOD],
                [P.FAILURE],
                [P.AGREE],
                [],
            ]
        )
    )
    return ask + [(participant, p, (initiator,), None) for p in answers]


def _contract_net_script(draw: Draw, initiator: str, bidders: list[str], at: int) -> Script:
    reply_by = draw(st.none() | st.integers(at, at + 6_000))
    script: Script = [(initiator, P.CFP, tuple(bidders), reply_by)]
    replies = {b: draw(st.sampled_from([P.PROPOSE, P.PROPOSE, P.REFUSE])) for b in bidders}
    script += [(b, p, (initiator,), None) for b, p in replies.items()]
    proposers = [b for b, p in replies.items() if p == P.PROPOSE]
    if proposers:
        winner = draw(st.sampled_from(proposers))
        script += [
            (initiator, P.ACCEPT_PROPOSAL if b == winner else P.REJECT_PROPOSAL, (b,), None)
            for b in proposers
        ]
        script.append((winner, draw(st.sampled_from([P.INFORM, P.FAILURE])), (initiator,), None))
    return script


@dataclass
class _Conversation:
    id: str
    protocol: str
    script: Script


@dataclass
class _Simulation:
    """A tiny model of a runtime that only ever records what a runtime could record."""

    log: Log = field(default_factory=Log)
    agents: dict[str, list[str]] = field(default_factory=dict)  # name -> replica lifecycles
    stopped: set[str] = field(default_factory=set)
    nodes: dict[str, bool] = field(default_factory=dict)  # node -> alive
    epochs: dict[int, int] = field(default_factory=dict)  # shard -> last epoch claimed
    conversations: list[_Conversation] = field(default_factory=list)
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (message, conversation, to)
    incarnation: int = 0

    def instances(self, *lifecycles: str) -> list[tuple[str, int]]:
        return [
            (name, r)
            for name, replicas in sorted(self.agents.items())
            if name not in self.stopped
            for r, lifecycle in enumerate(replicas)
            if lifecycle in lifecycles
        ]

    def actions(self) -> list[str]:
        possible = ["deploy", "node_start", "open"]
        if self.instances("deployed", "restarting"):
            possible.append("start")
        if self.instances("running"):
            possible += ["trap", "handle"]
        if self.instances("trapped"):
            possible.append("recover")
        if self.agents:
            possible += ["stop", "remove"]
        if any(self.nodes.values()):
            possible += ["node_stop", "claim", "release", "seen"]
        if any(c.script for c in self.conversations):
            possible += ["say", "say", "say"]
        if self.conversations:
            possible += ["dead_letter", "junk"]
        return possible

    def deploy(self, draw: Draw) -> None:
        name = draw(st.sampled_from(AGENTS))
        replicas = draw(st.integers(1, 3))
        capabilities = tuple(draw(st.lists(st.sampled_from(CAPABILITIES), unique=True)))
        self.agents[name] = ["deployed"] * replicas
        self.stopped.discard(name)
        policy = RestartPolicy(max_restarts=draw(st.integers(1, 3)))
        self.log.add(
            AgentDeployed(
                agent=name,
                component=f"sha256:{name}",
                component_size=100,
                replicas=replicas,
                capabilities=capabilities,
                restart=policy,
                config='{"k": 1}',
            )
        )

    def start(self, draw: Draw) -> None:
        name, r = draw(st.sampled_from(self.instances("deployed", "restarting")))
        self.incarnation += 1
        self.agents[name][r] = "running"
        journal = (HostCall(kind="now", value=str(self.log.at)),)
        self.log.add(
            AgentStarted(agent=name, replica=r, incarnation=self.incarnation, journal=journal)
        )

    def trap(self, draw: Draw) -> None:
        name, r = draw(st.sampled_from(self.instances("running")))
        cid = draw(st.sampled_from(["", *[c.id for c in self.conversations]]))
        self.agents[name][r] = "trapped"
        self.log.add(
            AgentTrapped(
                agent=name,
                replica=r,
                incarnation=self.incarnation,
                kind=draw(st.sampled_from(["trap", "timeout", "memory"])),
                reason="unreachable",
                conversation_id=cid,
            )
        )

    def recover(self, draw: Draw) -> None:
        name, r = draw(st.sampled_from(self.instances("trapped")))
        if draw(st.booleans()):
            self.agents[name][r] = "restarting"
            self.log.add(AgentRestarting(agent=name, replica=r, attempt=1, delay_ms=100))
        else:
            self.agents[name][r] = "failed"
            self.log.add(AgentFailed(agent=name, replica=r, reason="giving up"))

    def stop(self, draw: Draw) -> None:
        name = draw(st.sampled_from(sorted(self.agents)))
        self.stopped.add(name)
        self.log.add(AgentStopped(agent=name))

    def remove(self, draw: Draw) -> None:
        name = draw(st.sampled_from(sorted(self.agents)))
        del self.agents[name]
        self.stopped.discard(name)
        self.log.add(AgentRemoved(agent=name))

    def node_start(self, draw: Draw) -> None:
        node = draw(st.sampled_from(NODES))
        self.nodes[node] = True
        self.log.add(NodeStarted(node=node, address=f"127.0.0.1:{7946 + len(node)}", version="0.1"))

    def node_stop(self, draw: Draw) -> None:
        node = draw(st.sampled_from(sorted(n for n, up in self.nodes.items() if up)))
        self.nodes[node] = False
        self.log.add(NodeStopped(node=node))

    def claim(self, draw: Draw) -> None:
        node = draw(st.sampled_from(sorted(n for n, up in self.nodes.items() if up)))
        shard = draw(st.integers(0, 3))
        self.epochs[shard] = self.epochs.get(shard, 0) + 1
        self.log.add(ShardClaimed(shard=shard, node=node, epoch=self.epochs[shard]))

    def release(self, draw: Draw) -> None:
        node = draw(st.sampled_from(sorted(n for n, up in self.nodes.items() if up)))
        shard = draw(st.integers(0, 3))
        self.log.add(ShardReleased(shard=shard, node=node, epoch=self.epochs.get(shard, 0)))

    def seen(self, draw: Draw) -> None:
        by = draw(st.sampled_from(sorted(n for n, up in self.nodes.items() if up)))
        node = draw(st.sampled_from(NODES))
        state = draw(st.sampled_from(("alive", "suspect", "dead", "left")))
        self.log.add(MemberChanged(node=node, state=state, by=by))

    def open(self, draw: Draw) -> None:
        protocol = draw(st.sampled_from(PROTOCOL_NAMES))
        people = draw(st.lists(st.sampled_from((*AGENTS, "client:cli")), min_size=2, unique=True))
        initiator, others = people[0], people[1:]
        script: Script
        if protocol == "fipa-contract-net":
            script = _contract_net_script(draw, initiator, others, self.log.at)
        elif protocol == "fipa-query":
            opening = draw(st.sampled_from([P.QUERY_IF, P.QUERY_REF]))
            script = _request_script(draw, initiator, others[0], opening)
        else:
            script = _request_script(draw, initiator, others[0], P.REQUEST)
        cid = f"c{len(self.conversations) + 1}"
        self.conversations.append(_Conversation(id=cid, protocol=protocol, script=script))
        self.say_next(self.conversations[-1])

    def say(self, draw: Draw) -> None:
        talking = [c for c in self.conversations if c.script]
        self.say_next(draw(st.sampled_from(talking)))

    def say_next(self, conversation: _Conversation) -> None:
        sender, performative, receivers, reply_by = conversation.script.pop(0)
        sent = self.log.send(
            performative,
            sender,
            *receivers,
            conversation=conversation.id,
            protocol=conversation.protocol,
            reply_by=reply_by,
        )
        assert isinstance(sent.event, MessageSent)
        for to in sent.event.deliveries:
            self.sent.append((sent.event.message.id, conversation.id, to))

    def junk(self, draw: Draw) -> None:
        """A message that may well break its protocol: the fold must flag it, not raise."""
        conversation = draw(st.sampled_from(self.conversations))
        self.log.send(
            draw(st.sampled_from(list(P))),
            draw(st.sampled_from(AGENTS)),
            draw(st.sampled_from(AGENTS)),
            conversation=conversation.id,
            protocol=draw(st.sampled_from([conversation.protocol, ""])),
        )

    def handle(self, draw: Draw) -> None:
        delivered = [(m, c, to) for m, c, to in self.sent if "#" in to]
        if not delivered:
            return
        message_id, cid, to = draw(st.sampled_from(delivered))
        name, _, replica = to.partition("#")
        self.log.add(
            MessageHandled(
                message_id=message_id,
                conversation_id=cid,
                agent=name,
                replica=int(replica),
                journal=(HostCall(kind="random", value="0.5"),),
                duration_us=37,
            )
        )

    def dead_letter(self, draw: Draw) -> None:
        conversation = draw(st.sampled_from(self.conversations))
        self.log.add(
            MessageDeadLettered(
                message_id="m0",
                conversation_id=conversation.id,
                receiver="nobody",
                reason="no agent named nobody",
            )
        )


@st.composite
def histories(draw: Draw, max_steps: int = 40) -> list[Recorded]:
    """A plausible runtime history: deploy before start, traps then restarts, conversations."""
    simulation = _Simulation()
    for _ in range(draw(st.integers(0, max_steps))):
        action = draw(st.sampled_from(simulation.actions()))
        simulation.log.at += draw(st.integers(0, 3_000))
        getattr(simulation, action)(draw)
    return simulation.log.recorded
