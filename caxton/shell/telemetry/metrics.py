"""Prometheus metrics, counted from committed events and read from the node when scraped.

Counting on the hot path is a dictionary update per figure, handed to prometheus_client
(whose `inc` and `observe` take a lock each) once per label set when scraped; gauges
(mailboxes, agents by state, memory limits, the log position) are read only when
`/metrics` is scraped. Label values are bounded: agent
names, performatives, trap kinds and fixed reasons, never conversation or message ids.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from caxton.domain.events import (
    AgentRestarting,
    AgentTrapped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import is_client

if TYPE_CHECKING:
    from caxton.shell.runtime.node import Node

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HANDLING_BUCKETS = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_COMMIT_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)
_PERFORMATIVES_REMEMBERED = 50_000
_DEAD_LETTER_REASONS = (
    ("no agent named", "unknown_receiver"),
    ("no agent declares", "unknown_receiver"),
    ("mailbox full", "mailbox_full"),
    ("not running", "not_running"),
    ("agent stopped", "not_running"),
    ("agent removed", "not_running"),
    ("agent redeployed", "not_running"),
    ("agent failed", "agent_failed"),
)


class Metrics:
    """The node's Prometheus registry. `observe` is handed every committed event."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created`: noise here
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.sent = Counter(
            "caxton_messages_sent", "Messages accepted into the log.", ["performative"], registry=r
        )
        self.handled = Counter(
            "caxton_messages_handled",
            "Messages handled by agents, by outcome: ok, error (the agent's error reply), trapped.",
            ["agent", "performative", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "caxton_dead_letters", "Messages that could not be delivered.", ["reason"], registry=r
        )
        self.handling = Histogram(
            "caxton_handling_duration_seconds",
            "Time an agent's handler ran for one message.",
            ["agent"],
            buckets=_HANDLING_BUCKETS,
            registry=r,
        )
        self.cpu = Counter(
            "caxton_guest_cpu_seconds",
            "CPU time of agents' guest calls (the running thread's; tool waits excluded).",
            ["agent"],
            registry=r,
        )
        self.traps = Counter(
            "caxton_traps",
            "Traps, timeouts and out-of-memory kills.",
            ["agent", "kind"],
            registry=r,
        )
        self.restarts = Counter(
            "caxton_restarts", "Instance restarts after traps.", ["agent"], registry=r
        )
        self.tool_calls = Counter(
            "caxton_tool_calls", "Tool calls by outcome.", ["server", "outcome"], registry=r
        )
        self.appends = Counter("caxton_log_appends", "Events committed to the log.", registry=r)
        self.commits = Histogram(
            "caxton_log_commit_duration_seconds",
            "Time one group-commit transaction took.",
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.grpc = Counter(
            "caxton_grpc_requests", "gRPC API requests.", ["method", "code"], registry=r
        )
        self.agent_logs_dropped = Counter(
            "caxton_agent_logs_dropped",
            "Agents' log lines dropped by the per-agent rate limit.",
            ["agent"],
            registry=r,
        )
        self.spans_exported = Counter(
            "caxton_spans_exported", "Spans handed to the trace exporter.", registry=r
        )
        self.spans_dropped = Counter(
            "caxton_spans_dropped",
            "Spans dropped because the exporter's queue was full (a slow or absent collector).",
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._counts: dict[tuple[Any, ...], float] = {}
        """(metric, *labels) -> what to add at the next flush."""
        self._timings: dict[str, list[float]] = {}
        """agent -> handlings per bucket of _HANDLING_BUCKETS, then +Inf's, then their sum."""
        self._performatives: OrderedDict[str, tuple[str, int]] = OrderedDict()
        """message id -> its performative and how many of its deliveries to agents are not
        handled yet: a message is forgotten once they all are (the bound is for the rest)."""

    def attach(self, node: Node) -> None:
        """Reads the node's gauges at each scrape, and counts its commits."""
        self.registry.register(_NodeGauges(node))
        node.log.observe_commits(self.committed)

    def committed(self, events: int, commit_ns: int) -> None:
        self.appends.inc(events)
        self.commits.observe(commit_ns / 1e9)

    def observe(self, recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, MessageHandled):
            performative = self._handled(event.message_id)
            outcome = "error" if event.error else "ok"
            seconds = event.duration_us / 1e6
            self._count((self.handled, event.agent, performative, outcome))
            self._time(event.agent, seconds)
            self._count((self.cpu, event.agent), event.cpu_us / 1e6)
        elif isinstance(event, MessageSent):
            self._count((self.sent, event.message.performative.value))
            self._remember(event)
        elif isinstance(event, AgentTrapped):
            self._count((self.traps, event.agent, event.kind))
            self._count((self.cpu, event.agent), event.cpu_us / 1e6)
            if event.message_id:
                performative = self._performatives.get(event.message_id, ("unknown", 0))[0]
                self._count((self.handled, event.agent, performative, "trapped"))
        elif isinstance(event, MessageDeadLettered):
            self._count((self.dead_letters, _dead_letter_reason(event.reason)))
        elif isinstance(event, AgentRestarting):
            self._count((self.restarts, event.agent))
        elif isinstance(event, ToolReturned):
            self._count((self.tool_calls, event.server, "ok"))
        elif isinstance(event, ToolFailed):
            self._count((self.tool_calls, event.server, event.kind))

    def learn(self, recorded: Recorded) -> None:
        """An event another node of a cluster committed: not counted here (that node
        counts it), but a message it accepted may be handled here, under its
        performative."""
        if isinstance(recorded.event, MessageSent):
            self._remember(recorded.event)

    def _remember(self, sent: MessageSent) -> None:
        handlings = sum(1 for target in sent.deliveries if not is_client(target))
        if handlings:  # a client's handlings are not counted, so not looked up
            self._performatives[sent.message.id] = (sent.message.performative.value, handlings)
            if len(self._performatives) > _PERFORMATIVES_REMEMBERED:
                self._performatives.popitem(last=False)

    def _handled(self, message_id: str) -> str:
        """The performative of a message one of whose deliveries was handled."""
        awaited = self._performatives.get(message_id)
        if awaited is None:
            return "unknown"
        performative, handlings = awaited
        if handlings > 1:
            self._performatives[message_id] = (performative, handlings - 1)
        else:
            del self._performatives[message_id]
        return performative

    def request(self, method: str, code: str) -> None:
        self._count((self.grpc, method, code))

    def exposition(self) -> bytes:
        """The text format of every metric, as of now."""
        self.flush()
        return generate_latest(self.registry)

    def flush(self) -> None:
        """Hands what was counted since the last flush to the Prometheus metrics.

        Counting per event is a dictionary update here; prometheus_client's own `inc`
        and `observe` take a lock each (~1-4 µs apiece, several per message), so they
        run once per label set and scrape instead of once per event."""
        counts, self._counts = self._counts, {}
        for (metric, *labels), amount in counts.items():
            self._child(metric, *labels).inc(amount)
        timings, self._timings = self._timings, {}
        for agent, timing in timings.items():
            child = self._child(self.handling, agent)
            for i, n in enumerate(timing[:-1]):
                if n:
                    child._buckets[i].inc(n)  # what `observe` adds to, n at a time
            child._sum.inc(timing[-1])

    def _count(self, key: tuple[Any, ...], amount: float = 1) -> None:
        counts = self._counts
        counts[key] = counts.get(key, 0) + amount

    def _time(self, agent: str, seconds: float) -> None:
        timing = self._timings.get(agent)
        if timing is None:
            timing = self._timings[agent] = [0.0] * (len(_HANDLING_BUCKETS) + 2)
        # the first bucket whose bound is >= the value (or +Inf), as Histogram.observe picks
        timing[bisect_left(_HANDLING_BUCKETS, seconds)] += 1
        timing[-1] += seconds

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _dead_letter_reason(reason: str) -> str:
    for text, label in _DEAD_LETTER_REASONS:
        if text in reason:
            return label
    if ": " in reason:  # "trap: unreachable", "timeout: timed out after …"
        return "trapped"
    return "other"


class _NodeGauges(Collector):
    """Gauges read from the node when scraped (the scrape runs on the event loop)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterable[Metric]:
        node = self.node
        world = node.world
        position = GaugeMetricFamily("caxton_log_position", "The log's last folded position.")
        position.add_metric([], world.position)
        yield position
        agents = GaugeMetricFamily("caxton_agents", "Agents by state.", labels=["state"])
        instances = GaugeMetricFamily(
            "caxton_instances", "Agent instances by lifecycle.", labels=["lifecycle"]
        )
        depth = GaugeMetricFamily(
            "caxton_mailbox_depth", "Messages waiting in an agent's mailboxes.", labels=["agent"]
        )
        capacity = GaugeMetricFamily(
            "caxton_mailbox_capacity",
            "Room in an agent's mailboxes, in messages.",
            labels=["agent"],
        )
        memory = GaugeMetricFamily(
            "caxton_wasm_memory_limit_bytes",
            "Linear memory an agent's running instances may use in all (limit x instances).",
            labels=["agent"],
        )
        by_state: dict[str, int] = {}
        by_lifecycle: dict[str, int] = {}
        queued: dict[str, int] = {}
        room: dict[str, int] = {}
        for actor in list(node.actors.values()):
            queued[actor.agent] = queued.get(actor.agent, 0) + actor.mailbox.qsize()
            room[actor.agent] = room.get(actor.agent, 0) + actor.mailbox.maxsize
        for agent in world.agents.values():
            by_state[agent.status] = by_state.get(agent.status, 0) + 1
            running = 0
            for instance in agent.instances:
                by_lifecycle[instance.lifecycle] = by_lifecycle.get(instance.lifecycle, 0) + 1
                running += instance.lifecycle == "running"
            depth.add_metric([agent.name], queued.get(agent.name, 0))
            capacity.add_metric([agent.name], room.get(agent.name, 0))
            memory.add_metric([agent.name], agent.limits.memory_bytes * running)
        for state in ("running", "stopped"):
            agents.add_metric([state], by_state.get(state, 0))
        for lifecycle, count in sorted(by_lifecycle.items()):
            instances.add_metric([lifecycle], count)
        yield from (agents, instances, depth, capacity, memory)


Observer = Callable[[Recorded], None]
