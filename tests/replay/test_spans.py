"""Spans from recorded events: one trace per conversation, a tree that follows causation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from caxton.domain.events import MessageDeadLettered, Recorded, ToolCalled, ToolFailed
from caxton.domain.tracing import (
    deliver_span_id,
    parse_traceparent,
    process_span_id,
    send_span_id,
)
from caxton.replay.spans import Span, SpanBuilder, spans_of
from tests.replay.traced_histories import BIDDERS, P, TracedLog, contract_net

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def by_name(spans: list[Span]) -> dict[tuple[str, str], Span]:
    """Spans keyed by (name, message id)."""
    return {(s.name, str(s.attribute("messaging.message.id"))): s for s in spans}


def test_a_three_agent_contract_net_is_one_trace() -> None:
    log, _ = contract_net()

    spans = spans_of(log.recorded)

    assert len({s.trace_id for s in spans}) == 1
    assert len({s.span_id for s in spans}) == len(spans)
    roots = [s for s in spans if not s.parent_span_id]
    assert [r.name for r in roots] == ["send manager"]
    ids = {s.span_id for s in spans}
    assert all(s.parent_span_id in ids for s in spans if s.parent_span_id)


def test_the_span_tree_follows_the_message_causality() -> None:
    log, messages = contract_net()
    spans = by_name(spans_of(log.recorded))
    cfp = messages["cfp"]

    send_cfp = spans["send capability:bidding", cfp.id]
    assert send_cfp.parent_span_id == process_span_id(messages["request"].id, "manager")
    for bidder in BIDDERS:
        deliver = spans[f"deliver {bidder}", cfp.id]
        process = spans[f"process {bidder}", cfp.id]
        assert deliver.parent_span_id == send_cfp.span_id
        assert process.parent_span_id == send_cfp.span_id
        propose = spans["send manager", messages[f"propose {bidder}"].id]
        assert propose.parent_span_id == process.span_id
    accept = spans["send bidder-b", messages["award bidder-b"].id]
    assert accept.parent_span_id == process_span_id(messages["propose bidder-c"].id, "manager")
    inform = spans["send manager", messages["inform"].id]
    assert inform.parent_span_id == process_span_id(messages["award bidder-b"].id, "bidder-b")
    done = spans["send client", messages["done"].id]
    assert done.parent_span_id == process_span_id(messages["inform"].id, "manager")
    assert spans["deliver client", messages["done"].id].parent_span_id == done.span_id


def test_each_message_carries_its_own_send_span_as_trace_context() -> None:
    _, messages = contract_net()

    trace_ids = set()
    for message in messages.values():
        context = parse_traceparent(message.traceparent)
        assert context is not None, message
        assert context.span_id == send_span_id(message.id)
        trace_ids.add(context.trace_id)
    assert len(trace_ids) == 1


def test_spans_carry_the_messaging_semantic_conventions_and_the_fipa_fields() -> None:
    log, messages = contract_net()
    spans = by_name(spans_of(log.recorded))
    cfp = messages["cfp"]

    send = spans["send capability:bidding", cfp.id]
    assert send.kind == "producer"
    assert send.attribute("messaging.system") == "caxton"
    assert send.attribute("messaging.operation.type") == "send"
    assert send.attribute("messaging.destination.name") == "capability:bidding"
    assert send.attribute("messaging.message.id") == cfp.id
    assert send.attribute("messaging.message.conversation_id") == cfp.conversation_id
    assert send.attribute("messaging.caxton.performative") == "cfp"
    assert send.attribute("messaging.caxton.protocol") == "fipa-request"
    assert send.attribute("messaging.caxton.sender") == "manager"
    process = spans["process bidder-b", cfp.id]
    assert process.kind == "consumer"
    assert process.attribute("messaging.operation.type") == "process"
    assert process.attribute("messaging.caxton.performative") == "cfp"
    assert process.attribute("caxton.wasm.duration_us") == 500
    assert process.attribute("caxton.wasm.cpu_us") == 0  # a history from before it was kept
    assert process.end_ns - process.start_ns == 500_000
    deliver = spans["deliver bidder-b", cfp.id]
    assert deliver.attribute("messaging.operation.type") == "receive"
    assert deliver.start_ns == send.start_ns and deliver.end_ns == process.start_ns


def test_a_callers_traceparent_makes_the_send_a_child_of_the_callers_span() -> None:
    log = TracedLog()
    caller = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    request = log.from_client(P.REQUEST, "echo", "echo#0", traceparent=caller)
    (reply,) = log.handle(request, "echo", (P.INFORM, ("client:cli",), ("client:cli",)))

    spans = by_name(spans_of(log.recorded))

    send = spans["send echo", request.id]
    assert send.trace_id == CALLER_TRACE and send.parent_span_id == CALLER_SPAN
    assert spans["send client", reply.id].trace_id == CALLER_TRACE


def test_a_trap_is_an_error_and_the_platforms_failure_answers_it() -> None:
    log = TracedLog()
    request = log.from_client(P.REQUEST, "crashy", "crashy#0")
    failure = log.trap(request, "crashy")

    spans = by_name(spans_of(log.recorded))

    process = spans["process crashy", request.id]
    assert process.status == "error" and process.status_message == "trap: unreachable"
    assert process.attribute("caxton.trap.kind") == "trap"
    assert [e.name for e in process.events] == ["exception"]
    assert process.end_ns - process.start_ns == 300_000
    assert spans["send client", failure.id].parent_span_id == process.span_id
    assert ("deliver crashy", request.id) in spans  # once, not again for the dead letter
    assert len([s for s in spans_of(log.recorded) if s.name == "deliver crashy"]) == 1


def test_a_dead_letter_is_an_error_delivery() -> None:
    log = TracedLog()
    request = log.from_client(P.REQUEST, "nobody", "nobody")

    log.commit(
        MessageDeadLettered(
            message_id=request.id,
            conversation_id=request.conversation_id,
            receiver="nobody",
            reason="no agent named nobody",
        )
    )

    (_, dead) = spans_of(log.recorded)

    assert dead.name == "deliver nobody" and dead.status == "error"
    assert dead.span_id == deliver_span_id(request.id, "nobody")
    assert dead.status_message == "dead letter: no agent named nobody"


def test_a_handling_whose_send_is_not_among_the_events_keeps_its_trace() -> None:
    log, messages = contract_net()
    whole = by_name(spans_of(log.recorded))
    cfp = messages["cfp"]
    later = [r for r in log.recorded if r.position > 3]  # the request and cfp sends left out

    sliced = by_name(spans_of(later))

    assert sliced["process bidder-a", cfp.id].trace_id == whole["process bidder-a", cfp.id].trace_id
    assert sliced["process bidder-a", cfp.id].span_id == whole["process bidder-a", cfp.id].span_id


def test_the_builder_forgets_old_sends_but_never_grows_past_its_memory() -> None:
    log = TracedLog()
    builder = SpanBuilder(memory=10)
    for i in range(50):
        log.from_client(P.INFORM, "echo", "echo#0", message_id=f"c{i}")
    for recorded in log.recorded:
        builder.spans(recorded)

    assert len(builder._sent) == 10


def test_spans_are_the_same_every_time() -> None:
    log, _ = contract_net()

    assert spans_of(log.recorded) == spans_of(log.recorded)


def test_a_tool_call_is_an_execute_tool_span_under_the_handling_that_made_it() -> None:
    log = TracedLog()
    request = log.from_client(P.REQUEST, "inventory", "inventory#0")
    called = ToolCalled(
        call_id="t1",
        server="db",
        tool="read_query",
        arguments="{}",
        agent="inventory",
        conversation_id=request.conversation_id,
        message_id=request.id,
    )
    failed = ToolFailed(
        call_id="t1",
        server="db",
        tool="read_query",
        kind="timeout",
        reason="timeout: no answer within 5000 ms",
        duration_us=5_000_000,
        agent="inventory",
        conversation_id=request.conversation_id,
    )
    log.commit(called, failed, traceparent=request.traceparent)

    (_, tool) = spans_of(log.recorded)

    assert tool.name == "execute_tool read_query"
    assert tool.parent_span_id == process_span_id(request.id, "inventory")
    assert tool.trace_id == parse_traceparent(request.traceparent).trace_id  # type: ignore[union-attr]
    assert tool.status == "error" and tool.attribute("error.type") == "timeout"
    assert tool.attribute("gen_ai.tool.name") == "read_query"
    assert tool.end_ns - tool.start_ns == 5_000_000_000


def test_a_sampler_keeps_or_drops_whole_traces() -> None:
    log, messages = contract_net()
    other = TracedLog(at=log.at)
    request = other.from_client(P.REQUEST, "echo", "echo#0", message_id="other")
    other.handle(request, "echo", (P.INFORM, ("client:cli",), ("client:cli",)))
    records = log.recorded + [
        replace(r, position=len(log.recorded) + i + 1) for i, r in enumerate(other.recorded)
    ]
    kept_trace = parse_traceparent(messages["cfp"].traceparent).trace_id  # type: ignore[union-attr]

    spans = spans_of_kept(records, lambda trace, flags: trace == kept_trace)

    assert spans and {s.trace_id for s in spans} == {kept_trace}
    assert len(spans) == len(spans_of(log.recorded))


def spans_of_kept(records: list[Recorded], keep: Callable[[str, str], bool]) -> list[Span]:
    builder = SpanBuilder(keep=keep)
    return [span for recorded in records for span in builder.spans(recorded)]
