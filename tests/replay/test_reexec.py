"""Re-execution's decisions: the agent's inputs, the journal fed back, the comparison."""

from __future__ import annotations

import json

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import HostCall
from caxton.replay.recording import record
from caxton.replay.reexec import (
    Journal,
    NotInConversation,
    Report,
    compare,
    judge,
    render,
    script,
)
from tests.replay.recordings import CONVERSATION, contract_net


def test_the_script_holds_the_agents_inputs_in_order_with_what_it_answered() -> None:
    plan = script(record(CONVERSATION, contract_net()), "manager")
    performatives = [i.message.performative.value for i in plan.inputs]
    assert performatives == ["request", "propose", "propose", "propose", "inform"]
    assert plan.inputs[0].journal == (HostCall(kind="now", value="1764000000000"),)
    assert [m.performative.value for m in plan.inputs[0].sent] == ["cfp"]
    bidder_b = plan.inputs[2]  # the proposals come in bidder order
    assert [m.performative.value for m in bidder_b.sent] == ["accept-proposal"]
    assert plan.component == "sha256:manager"


def test_a_trapped_input_is_expected_to_trap() -> None:
    plan = script(record(CONVERSATION, contract_net(trap=True)), "bidder-a")
    assert [i.trap for i in plan.inputs] == ["trap: unreachable"]
    assert plan.inputs[0].sent == ()


def test_an_agent_outside_the_conversation_is_refused() -> None:
    with pytest.raises(NotInConversation, match="'nobody' handled no message"):
        script(record(CONVERSATION, contract_net()), "nobody")


def test_the_journal_is_fed_back_in_order_and_surprises_are_remembered() -> None:
    journal = Journal([HostCall(kind="now", value="5"), HostCall(kind="random", value="7")])
    assert journal.take("now") == HostCall(kind="now", value="5")
    assert journal.take("now") is None  # the record has random() next
    assert journal.take("random") == HostCall(kind="random", value="7")
    assert journal.take("random") is None  # beyond the record
    assert journal.surprises == [
        "asked the host for now() where the record has random()",
        "asked the host for random() beyond what was recorded",
    ]
    tools = Journal([HostCall(kind="call-tool", value=json.dumps({"ok": "[]"}))])
    assert tools.take("call-tool") is not None and tools.unused() == []


def message(performative: str, content: object, to: str = "manager") -> AclMessage:
    return AclMessage(
        id="m",
        performative=Performative(performative),
        sender="bidder-b",
        receivers=(to,),
        content=json.dumps(content),
    )


def test_compare_is_pairwise_and_reads_json_content_as_json() -> None:
    same = compare([message("propose", {"a": 1, "b": 2})], [message("propose", {"b": 2, "a": 1})])
    assert [c.verdict for c in same] == ["same"]
    changed = compare([message("propose", {"price": 9})], [message("refuse", {"price": 8})])
    assert changed[0].verdict == "different"
    assert changed[0].differences == ("performative", "content")
    assert [c.verdict for c in compare([message("propose", 1)], [])] == ["missing"]
    assert [c.verdict for c in compare([], [message("propose", 1)])] == ["extra"]


def test_the_report_shows_the_first_difference_side_by_side() -> None:
    plan = script(record(CONVERSATION, contract_net()), "bidder-b")
    cfp = plan.inputs[0]
    recorded = cfp.sent[0]
    cheaper = AclMessage(
        id=recorded.id,
        performative=recorded.performative,
        sender=recorded.sender,
        receivers=recorded.receivers,
        content=json.dumps({"price": 5}),
        protocol=recorded.protocol,
        conversation_id=recorded.conversation_id,
        in_reply_to=recorded.in_reply_to,
    )
    outcomes = (judge(cfp, [cheaper]), *(judge(i, i.sent) for i in plan.inputs[1:]))
    report = Report(agent="bidder-b", build="v2.wasm", outcomes=outcomes)
    assert not report.identical and not report.trapped
    text = render(report)
    assert "✗ different  propose → manager  (content)" in text
    assert '"price": 9' in text and '"price": 5' in text
    assert f"✗ diverges at step {cfp.step}" in text
    same = Report(
        agent="bidder-b", build="v1.wasm", outcomes=tuple(judge(i, i.sent) for i in plan.inputs)
    )
    assert same.identical and "✓ identical" in render(same)
    trapped = Report(agent="bidder-b", build="bad.wasm", outcomes=(judge(cfp, (), trap="trap: x"),))
    assert trapped.trapped and "the new build traps" in render(trapped)
