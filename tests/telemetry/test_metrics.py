"""`/metrics` scraped during a run parses with prometheus-client's parser and matches the log."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from caxton.client import CaxtonClient
from caxton.domain.acl import Performative
from caxton.domain.events import (
    AgentTrapped,
    Event,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.shell.api.generated.caxton import v1
from caxton.shell.telemetry.metrics import _HANDLING_BUCKETS, Metrics
from tests.samples import message
from tests.support import wat
from tests.telemetry.conftest import Observed


async def http_get(address: str, path: str) -> tuple[int, str]:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_the_counters_match_the_log(observed: Observed) -> None:
    client = observed.client
    await client.deploy(wat("reply"), "echo", replicas=2)
    await client.deploy(wat("trap"), "crashy")
    for _ in range(5):
        await client.send("echo", "request", {"n": 1}, protocol="fipa-request", wait_ms=5_000)
    await client.send("crashy", "request", {}, wait_ms=5_000)
    await client.send("nobody", "inform", {}, wait_ms=5_000)
    metrics = observed.config.metrics

    status, text = await http_get(metrics, "/metrics")

    assert status == 200
    found = samples(text)
    history = await observed.log.read()
    sent = Counter(
        r.event.message.performative.value for r in history if isinstance(r.event, MessageSent)
    )
    for performative, count in sent.items():
        assert found["caxton_messages_sent_total", (("performative", performative),)] == count
    handled = [r.event for r in history if isinstance(r.event, MessageHandled)]
    assert found[
        "caxton_messages_handled_total",
        (("agent", "echo"), ("outcome", "ok"), ("performative", "request")),
    ] == len(handled)
    assert found["caxton_handling_duration_seconds_count", (("agent", "echo"),)] == len(handled)
    traps = [r.event for r in history if isinstance(r.event, AgentTrapped)]
    assert found["caxton_traps_total", (("agent", "crashy"), ("kind", "trap"))] == len(traps) == 1
    dead = [r.event for r in history if isinstance(r.event, MessageDeadLettered)]
    assert sum(v for (name, _), v in found.items() if name == "caxton_dead_letters_total") == len(
        dead
    )
    assert found["caxton_dead_letters_total", (("reason", "unknown_receiver"),)] == 1
    assert found["caxton_log_appends_total", ()] == len(history)
    assert found["caxton_log_position", ()] == history[-1].position
    assert found["caxton_agents", (("state", "running"),)] == 2
    assert found["caxton_mailbox_capacity", (("agent", "echo"),)] == 2 * 1024
    assert found["caxton_grpc_requests_total", (("code", "OK"), ("method", "Send"))] == 7


async def test_health_is_live_and_ready_once_the_api_listens(observed: Observed) -> None:
    health = observed.config.health

    assert (await http_get(health, "/health"))[0] == 200
    status, body = await http_get(health, "/ready")
    assert status == 200 and '"ready": true' in body

    observed.observability.checks["api"] = False
    status, body = await http_get(health, "/ready")
    assert status == 503 and '"api": false' in body
    assert (await http_get(health, "/nowhere"))[0] == 404


async def test_a_port_in_use_is_a_clear_error(observed: Observed) -> None:
    from caxton.shell.config import ServerConfig
    from caxton.shell.telemetry.http import EndpointUnavailable
    from caxton.shell.telemetry.wiring import Observability

    second = Observability(ServerConfig(metrics=observed.config.metrics, health="off"))

    try:
        await second.bind()
    except EndpointUnavailable as exc:
        assert str(exc) == (
            f"cannot serve metrics on {observed.config.metrics} (address already in use); "
            "choose another address with --metrics HOST:PORT, or --metrics off"
        )
    else:
        await second.close()
        raise AssertionError("a second server bound the same metrics port")


def test_handling_times_land_in_the_buckets_histogram_observe_picks() -> None:
    # on a bound, between bounds, below the first and past the last
    durations_us = [0, 50, 100, 101, 250, 999, 1000, 5000, 30_000_000, 31_000_000, 100]
    metrics = Metrics()
    reference = Histogram("ref", "", ["agent"], buckets=_HANDLING_BUCKETS, registry=None)
    for i, us in enumerate(durations_us):
        handled = MessageHandled(
            message_id=f"m{i}", conversation_id="c", agent="a", replica=0, duration_us=us
        )
        metrics.observe(Recorded(position=i + 1, stream="s", version=i + 1, at=0, event=handled))
        reference.labels("a").observe(us / 1e6)
    registry = CollectorRegistry()
    registry.register(reference)
    expected = {
        (
            s.name.replace("ref", "caxton_handling_duration_seconds"),
            tuple(sorted(s.labels.items())),
        ): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.startswith("caxton_handling_duration_seconds")
    }
    assert found == expected
    assert metrics.exposition()  # a second scrape adds nothing twice
    assert found == {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.startswith("caxton_handling_duration_seconds")
    }


def test_a_message_is_forgotten_once_every_agent_it_went_to_has_handled_it() -> None:
    metrics = Metrics()
    events: list[Event] = [
        MessageSent(
            message=replace(message(index=1), performative=Performative.CFP),
            deliveries=("a#0", "b#0", "client:x"),
        ),
        MessageSent(
            message=replace(message(index=2), performative=Performative.INFORM),
            deliveries=("client:x",),
        ),  # a client's handling is never recorded
    ]
    events += [
        MessageHandled(message_id="m1", conversation_id="c1", agent=agent, replica=0)
        for agent in ("a", "b")
    ]
    for i, event in enumerate(events):
        metrics.observe(Recorded(position=i + 1, stream="s", version=i + 1, at=0, event=event))

    found = samples(metrics.exposition().decode())
    for agent in ("a", "b"):
        labels = (("agent", agent), ("outcome", "ok"), ("performative", "cfp"))
        assert found[("caxton_messages_handled_total", labels)] == 1
    assert not metrics._performatives, "what every agent handled is still remembered"


async def _scrape_until(address: str, ready: Callable[[Samples], bool]) -> Samples:
    """Scrapes until `ready` holds: the server counts a request after its client has gone."""
    async with asyncio.timeout(30):
        while True:
            found = samples((await http_get(address, "/metrics"))[1])
            if ready(found):
                return found
            await asyncio.sleep(0.02)


async def test_a_stream_the_client_cancels_is_counted_once_as_cancelled(
    observed: Observed,
) -> None:
    def streams(found: Samples) -> dict[str, float]:
        return {
            dict(labels)["code"]: value
            for (name, labels), value in found.items()
            if name == "caxton_grpc_requests_total" and ("method", "StreamEvents") in labels
        }

    def counted(n: int) -> Callable[[Samples], bool]:
        return lambda found: sum(streams(found).values()) >= n

    await observed.client.deploy(wat("reply"), "echo")
    async with aclosing(observed.client.events(follow=True)) as events:
        async for _ in events:
            break  # the client resets the stream and keeps its connection

    assert streams(await _scrape_until(observed.config.metrics, counted(1))) == {"CANCELLED": 1}

    leaving = CaxtonClient(observed.client.address)
    following = leaving.events(follow=True)
    await anext(following)
    leaving.close()  # the client's connection closes under an open stream (Ctrl-C)

    assert streams(await _scrape_until(observed.config.metrics, counted(2))) == {"CANCELLED": 2}
    await following.aclose()

    host, port = observed.client.address.rsplit(":", 1)
    async with Channel(host, int(port)) as channel:
        late = v1.EventServiceStub(channel).stream_events(
            v1.StreamEventsRequest(follow=True), timeout=0.2
        )
        with pytest.raises((GRPCError, asyncio.TimeoutError)):
            async for _ in late:
                pass

    found = streams(await _scrape_until(observed.config.metrics, counted(3)))
    # whichever deadline fires first: the client's (it resets the stream) or the server's
    assert found in ({"CANCELLED": 3}, {"CANCELLED": 2, "DEADLINE_EXCEEDED": 1})


async def test_the_start_up_announcement_says_where_spans_go(observed: Observed) -> None:
    from caxton.shell.config import ServerConfig
    from caxton.shell.telemetry.wiring import Observability

    config = ServerConfig(metrics="off", health="off", traces="otlp-http")
    tracing = Observability(replace(config, otlp_endpoint="http://127.0.0.1:4318"))
    tracing.start_traces(observed.log, observed.node)
    try:
        assert tracing.addresses == {"traces": "http://127.0.0.1:4318/v1/traces (otlp-http)"}
    finally:
        await tracing.close()


def test_a_cluster_node_counts_what_it_committed_not_what_it_followed() -> None:
    # node B follows a CFP that node A accepted, then handles it: summed over the
    # cluster's nodes, the message is sent once and handled once, as a cfp
    metrics = Metrics()
    sent = MessageSent(
        message=replace(message(index=1), performative=Performative.CFP), deliveries=("b#0",)
    )
    handled = MessageHandled(message_id="m1", conversation_id="c1", agent="b", replica=0)
    metrics.learn(Recorded(position=1, stream="s", version=1, at=0, event=sent))
    metrics.observe(Recorded(position=2, stream="s", version=2, at=0, event=handled))

    found = samples(metrics.exposition().decode())
    assert not any(name == "caxton_messages_sent_total" for name, _ in found)
    labels = (("agent", "b"), ("outcome", "ok"), ("performative", "cfp"))
    assert found[("caxton_messages_handled_total", labels)] == 1
