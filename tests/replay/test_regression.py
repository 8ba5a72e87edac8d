"""Regression replay's decisions: which conversations an agent took part in, each
re-execution as one verdict, the table and the exit status."""

from __future__ import annotations

import json
from dataclasses import replace

from caxton.domain.events import Recorded
from caxton.replay.recording import record
from caxton.replay.reexec import Report, judge, script
from caxton.replay.regression import (
    EXIT_DIVERGED,
    EXIT_IDENTICAL,
    EXIT_UNANSWERED,
    cases,
    exit_status,
    init_failed,
    scan,
    table,
    verdict,
)
from tests.replay.recordings import CONVERSATION, START_MS, contract_net


def test_scan_finds_the_conversations_the_agent_handled_a_message_in() -> None:
    events = contract_net()
    found = scan("bidder-b", events)
    assert found.deployed and found.conversations == (CONVERSATION,)
    assert scan("bidder-b", events, since_ms=START_MS + 60_000).conversations == ()
    assert scan("bidder-b", events, since_ms=START_MS + 60_000).deployed
    nobody = scan("nobody", events)
    assert not nobody.deployed and nobody.conversations == ()


def test_a_trap_on_a_message_counts_as_taking_part() -> None:
    found = scan("bidder-a", contract_net(trap=True))
    assert found.conversations == (CONVERSATION,)


def test_cases_are_one_per_conversation_with_the_agents_script() -> None:
    events = contract_net()
    (case,) = cases("bidder-b", [(record(CONVERSATION, events), events)])
    assert case.conversation_id == CONVERSATION
    assert [i.message.performative.value for i in case.script.inputs] == ["cfp"]


def bidder_b_report(**changes: object) -> Report:
    events: list[Recorded] = contract_net()
    plan = script(record(CONVERSATION, events), "bidder-b")
    cfp = plan.inputs[0]
    if not changes:
        outcome = judge(cfp, cfp.sent)
    elif "content" in changes:
        outcome = judge(cfp, [replace(cfp.sent[0], content=json.dumps(changes["content"]))])
    else:
        outcome = judge(cfp, (), **changes)  # type: ignore[arg-type]
    return Report(agent="bidder-b", build="v2.wasm", outcomes=(outcome,))


def test_each_report_becomes_one_verdict_with_its_first_divergence() -> None:
    same = verdict("c1", bidder_b_report())
    assert same.status == "identical" and same.step is None and same.inputs == 1
    cheaper = verdict("c2", bidder_b_report(content={"price": 5}))
    assert cheaper.status == "diverged"
    assert cheaper.received == "cfp from manager"
    assert cheaper.expected == 'propose → manager {"price":9}'
    assert cheaper.came == 'propose → manager {"price":5}'
    trapped = verdict("c3", bidder_b_report(trap="trap: unreachable"))
    assert trapped.status == "trapped" and trapped.came == "trap: unreachable"
    asked = verdict(
        "c4",
        bidder_b_report(
            surprises=["asked the host for now() beyond what was recorded"],
            unanswered=["asked the host for now() beyond what was recorded"],
        ),
    )
    assert asked.status == "needs-host-answer"
    assert asked.came == "asked the host for now() beyond what was recorded"


def test_the_exit_status_is_zero_only_when_every_conversation_is_identical() -> None:
    same = verdict("c1", bidder_b_report())
    changed = verdict("c2", bidder_b_report(content={"price": 5}))
    asked = verdict("c4", bidder_b_report(unanswered=["asked the host for now()"]))
    assert exit_status([same, same]) == EXIT_IDENTICAL
    assert exit_status([same, changed, asked]) == EXIT_DIVERGED
    assert exit_status([same, asked]) == EXIT_UNANSWERED
    broken = init_failed("c5", "init: trap: unreachable", trapped=True, inputs=2)
    assert exit_status([broken]) == EXIT_DIVERGED and broken.status == "trapped"


def test_the_table_has_a_row_per_conversation_and_the_counts() -> None:
    text = table(
        "bidder-b",
        "v2.wasm",
        [
            verdict("c1", bidder_b_report()),
            verdict("c2", bidder_b_report(content={"price": 5})),
            init_failed("c5", "fails in init: bad config", trapped=False, inputs=1),
        ],
    )
    lines = text.splitlines()
    assert lines[0] == "Regression replay of bidder-b with v2.wasm: 3 conversations"
    assert any(line.startswith("c1") and "identical" in line for line in lines)
    assert any(line.startswith("c2") and "diverged" in line and "cfp from manager" in line
               for line in lines)  # fmt: skip
    assert any(line.startswith("c5") and "init" in line for line in lines)
    assert 'came      propose → manager {"price":5}' in text
    assert lines[-1] == "✗ 1 identical, 2 diverged"
