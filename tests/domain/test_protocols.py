"""FIPA protocols as checked by the conversation fold: complete runs, violations, phases."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from caxton.domain import (
    FIPA_CONTRACT_NET,
    NO_CONVERSATIONS,
    TABLES,
    ConversationState,
    evolve_conversations,
    phase,
)
from caxton.domain.acl import AclMessage
from caxton.domain.conversations import RETIRE_OPEN_AFTER_MS
from caxton.domain.events import MessageSent
from tests.domain.domain_histories import Log, P

CNET = "fipa-contract-net"


def conversation(log: Log, cid: str = "c1") -> ConversationState:
    conversations = NO_CONVERSATIONS
    for recorded in log.recorded:
        conversations = evolve_conversations(conversations, recorded)
    return conversations[cid]


def reasons(log: Log) -> list[str]:
    return [v.reason for v in conversation(log).violations]


def phase_of(log: Log) -> str:
    state = conversation(log).protocol_state
    assert state is not None
    return phase(state)


def auction(reply_by: int | None = None) -> Log:
    """A cfp from `buyer` to three bidders at t=1000."""
    log = Log(at=1_000)
    log.send(P.CFP, "buyer", "bidder-a", "bidder-b", "bidder-c", protocol=CNET, reply_by=reply_by)
    return log


def test_a_complete_request_is_done() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request")
    assert conversation(log).outcome == "open"
    assert phase_of(log) == "agreed"
    log.send(P.INFORM, "bob", "alice", protocol="fipa-request")
    assert conversation(log).outcome == "done"
    assert phase_of(log) == "done"


def test_a_request_answered_directly_with_inform_is_done() -> None:
    log = Log()
    log.send(P.REQUEST, "client:cli", "bob", protocol="fipa-request")
    log.send(P.INFORM, "bob#0", "client:cli", protocol="fipa-request")
    assert conversation(log).outcome == "done"
    assert conversation(log).participants == frozenset({"client:cli", "bob"})


def test_a_refused_request_is_over_without_failing() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.REFUSE, "bob", "alice", protocol="fipa-request")
    assert conversation(log).outcome == "done"


def test_a_failure_after_agree_fails_the_request() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request")
    log.send(P.FAILURE, "bob", "alice", protocol="fipa-request")
    assert conversation(log).outcome == "failed"


def test_agreeing_twice_is_a_violation() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request")
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request")
    assert reasons(log) == ["agree from bob after it agreed (fipa-request)"]
    assert conversation(log).outcome == "violated"


def test_a_request_conversation_must_open_with_request() -> None:
    log = Log()
    log.send(P.INFORM, "alice", "bob", protocol="fipa-request")
    assert reasons(log) == ["a fipa-request exchange with bob must open with request, not inform"]


def test_a_stranger_answering_is_a_violation() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.INFORM, "mallory", "alice", protocol="fipa-request")
    assert reasons(log) == [
        "inform from mallory, which is not a participant of this fipa-request (opened by alice)"
    ]


def test_switching_protocol_mid_conversation_is_a_violation() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.send(P.INFORM, "bob", "alice", protocol="fipa-query")
    assert reasons(log) == ["inform uses protocol fipa-query in a fipa-request conversation"]


def test_messages_outside_any_protocol_are_not_checked() -> None:
    log = Log()
    log.send(P.INFORM, "alice", "bob")
    log.send(P.ACCEPT_PROPOSAL, "bob", "alice")
    state = conversation(log)
    assert state.violations == ()
    assert state.outcome == "open"
    assert state.message_count == 2
    assert state.protocol_state is None


def test_a_query_ref_answered_with_inform_ref_is_done() -> None:
    log = Log()
    log.send(P.QUERY_REF, "alice", "bob", protocol="fipa-query")
    log.send(P.INFORM_REF, "bob", "alice", protocol="fipa-query")
    assert conversation(log).outcome == "done"


def test_a_query_if_answered_with_inform_ref_is_a_violation() -> None:
    log = Log()
    log.send(P.QUERY_IF, "alice", "bob", protocol="fipa-query")
    log.send(P.INFORM_REF, "bob", "alice", protocol="fipa-query")
    assert conversation(log).outcome == "violated"


def test_a_query_may_be_agreed_then_answered() -> None:
    log = Log()
    log.send(P.QUERY_IF, "alice", "bob", protocol="fipa-query")
    log.send(P.AGREE, "bob", "alice", protocol="fipa-query")
    log.send(P.INFORM, "bob", "alice", protocol="fipa-query")
    assert conversation(log).outcome == "done"


def test_a_complete_contract_net_is_done() -> None:
    log = auction(reply_by=2_000)
    assert phase_of(log) == "cfp sent"
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, at=1_500)
    log.send(P.REFUSE, "bidder-b", "buyer", protocol=CNET)
    log.send(P.PROPOSE, "bidder-c", "buyer", protocol=CNET, at=2_000)
    assert phase_of(log) == "proposals in"
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-c", protocol=CNET)
    log.send(P.REJECT_PROPOSAL, "buyer", "bidder-a", protocol=CNET)
    assert phase_of(log) == "awarded"
    assert conversation(log).outcome == "open"
    log.send(P.INFORM, "bidder-c", "buyer", protocol=CNET)
    assert phase_of(log) == "done"
    state = conversation(log)
    assert state.violations == ()
    assert state.outcome == "done"
    assert state.participants == frozenset({"buyer", "bidder-a", "bidder-b", "bidder-c"})


def test_a_propose_after_the_deadline_is_a_violation() -> None:
    log = auction(reply_by=5_000)
    log.send(P.PROPOSE, "bidder-c", "buyer", protocol=CNET, at=5_120)
    assert reasons(log) == ["propose from bidder-c 120 ms after the cfp's reply-by 00:00:05.000"]
    assert conversation(log).outcome == "violated"


def test_a_late_propose_says_by_how_long_and_which_deadline_in_utc() -> None:
    reply_by = int(datetime(2026, 12, 3, 13, 15, 5, tzinfo=UTC).timestamp() * 1000)
    log = Log(at=reply_by - 2_554)
    log.send(P.CFP, "buyer", "bidder-a", "bidder-b", protocol=CNET, reply_by=reply_by)
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, at=reply_by - 1)
    log.send(P.PROPOSE, "bidder-b", "buyer", protocol=CNET, at=reply_by + 12_900)
    assert reasons(log) == ["propose from bidder-b 12.9 s after the cfp's reply-by 13:15:05.000"]


def test_an_answer_exactly_at_the_deadline_is_in_time() -> None:
    log = auction(reply_by=5_000)
    log.send(P.REFUSE, "bidder-a", "buyer", protocol=CNET, at=5_000)
    assert reasons(log) == []


def test_a_late_refusal_is_flagged_too() -> None:
    log = auction(reply_by=5_000)
    log.send(P.REFUSE, "bidder-a", "buyer", protocol=CNET, at=65_000)
    assert reasons(log) == ["refuse from bidder-a 1 min 0 s after the cfp's reply-by 00:00:05.000"]


def test_a_late_proposal_still_moves_its_exchange_on() -> None:
    """Late, not out of order: accepting it is no second violation."""
    log = auction(reply_by=5_000)
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, at=6_000)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-a", protocol=CNET, at=6_100)
    assert reasons(log) == ["propose from bidder-a 1.0 s after the cfp's reply-by 00:00:05.000"]
    state = conversation(log).protocol_state
    assert state is not None
    assert state.pairs["bidder-a"] == "accepted"


def test_an_inform_after_the_requests_deadline_is_a_violation() -> None:
    log = Log(at=1_000)
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request", reply_by=3_000)
    log.send(P.INFORM, "bob#0", "alice", protocol="fipa-request", at=15_900)
    assert reasons(log) == ["inform from bob 12.9 s after the request's reply-by 00:00:03.000"]
    assert conversation(log).outcome == "violated"


def test_only_the_first_answer_is_bound_by_the_deadline() -> None:
    """An agree in time answers the request; the inform may follow whenever."""
    log = Log(at=1_000)
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request", reply_by=3_000)
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request", at=2_000)
    log.send(P.INFORM, "bob", "alice", protocol="fipa-request", at=60_000)
    assert reasons(log) == []
    assert conversation(log).outcome == "done"


def test_a_late_query_answer_is_a_violation() -> None:
    log = Log(at=1_000)
    log.send(P.QUERY_REF, "alice", "bob", protocol="fipa-query", reply_by=2_000)
    log.send(P.INFORM_REF, "bob", "alice", protocol="fipa-query", at=2_500)
    assert reasons(log) == [
        "inform-ref from bob 500 ms after the query-ref's reply-by 00:00:02.000"
    ]


def test_an_award_after_the_proposals_own_reply_by_is_a_violation() -> None:
    log = auction()
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, reply_by=4_000, at=2_000)
    log.send(P.REJECT_PROPOSAL, "buyer", "bidder-a", protocol=CNET, at=4_250)
    assert reasons(log) == [
        "reject-proposal to bidder-a 250 ms after the propose's reply-by 00:00:04.000"
    ]


def test_each_bidder_is_held_to_the_deadline_it_was_sent() -> None:
    log = Log(at=1_000)
    log.send(P.CFP, "buyer", "bidder-a", protocol=CNET, reply_by=2_000)
    log.send(P.CFP, "buyer", "bidder-b", protocol=CNET, reply_by=9_000)
    log.send(P.PROPOSE, "bidder-b", "buyer", protocol=CNET, at=5_000)
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, at=5_000)
    assert reasons(log) == ["propose from bidder-a 3.0 s after the cfp's reply-by 00:00:02.000"]


def test_a_cancel_lifts_the_deadline_and_crossing_answers_are_not_late() -> None:
    log = auction(reply_by=2_000)
    log.send(P.CANCEL, "buyer", "bidder-a", "bidder-b", "bidder-c", protocol=CNET, at=1_500)
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET, at=3_000)
    assert reasons(log) == []


def test_a_propose_without_a_deadline_is_never_late() -> None:
    """Never late, for as long as the live world holds the open conversation (an hour
    of quiet: `RETIRE_OPEN_AFTER_MS`)."""
    log = auction()
    log.send(P.PROPOSE, "bidder-c", "buyer", protocol=CNET, at=RETIRE_OPEN_AFTER_MS - 1)
    assert reasons(log) == []


def test_accepting_the_same_proposal_twice_is_a_violation() -> None:
    log = auction()
    log.send(P.PROPOSE, "bidder-b", "buyer", protocol=CNET)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-b", protocol=CNET)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-b", protocol=CNET)
    assert reasons(log) == ["accept-proposal sent twice to bidder-b"]


def test_accepting_a_bidder_that_did_not_propose_is_a_violation() -> None:
    log = auction()
    log.send(P.REFUSE, "bidder-a", "buyer", protocol=CNET)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-a", protocol=CNET)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-z", protocol=CNET)
    assert reasons(log) == [
        "accept-proposal to bidder-a, which did not propose",
        "accept-proposal to bidder-z, which was never sent the cfp",
    ]


def test_informing_before_the_award_is_a_violation() -> None:
    log = auction()
    log.send(P.INFORM, "bidder-a", "buyer", protocol=CNET)
    assert reasons(log) == ["inform from bidder-a before its proposal was accepted"]


def test_a_failed_award_fails_the_contract_net() -> None:
    log = auction()
    for bidder in ("bidder-a", "bidder-b", "bidder-c"):
        log.send(P.PROPOSE, bidder, "buyer", protocol=CNET)
    log.send(P.ACCEPT_PROPOSAL, "buyer", "bidder-a", protocol=CNET)
    log.send(P.REJECT_PROPOSAL, "buyer", "bidder-b", "bidder-c", protocol=CNET)
    log.send(P.FAILURE, "bidder-a", "buyer", protocol=CNET)
    assert conversation(log).outcome == "failed"
    assert phase_of(log) == "failed"


def test_the_initiator_may_cancel_at_any_time_and_late_answers_are_tolerated() -> None:
    log = auction()
    log.send(P.PROPOSE, "bidder-a", "buyer", protocol=CNET)
    log.send(P.CANCEL, "buyer", "bidder-a", "bidder-b", "bidder-c", protocol=CNET)
    log.send(P.PROPOSE, "bidder-b", "buyer", protocol=CNET)
    log.send(P.INFORM, "bidder-a", "buyer", protocol=CNET)
    assert reasons(log) == []
    assert phase_of(log) == "cancelled"
    assert conversation(log).outcome == "done"


def test_a_cfp_to_a_capability_opens_one_exchange_per_delivered_agent() -> None:
    log = Log()
    log.send(
        P.CFP,
        "buyer",
        "capability:pricing",
        protocol=CNET,
        deliveries=("bidder-a#2", "bidder-b#0", "buyer#0"),
    )
    state = conversation(log).protocol_state
    assert state is not None
    assert dict(state.pairs) == {"bidder-a": "called", "bidder-b": "called"}


def test_the_tables_are_plain_data() -> None:
    assert FIPA_CONTRACT_NET[("proposed", "initiator", P.ACCEPT_PROPOSAL)] == "accepted"
    assert set(TABLES) == {"fipa-request", "fipa-query", "fipa-contract-net"}


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.sampled_from([P.AGREE, P.REFUSE, P.INFORM, P.FAILURE, P.NOT_UNDERSTOOD]),
    st.integers(0, 10_000),
)
def test_the_first_answer_is_late_exactly_when_it_comes_after_the_reply_by(
    wait: int, answered_after: int, answer: P, then_after: int
) -> None:
    log = Log(at=1_000)
    reply_by = 1_000 + wait
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request", reply_by=reply_by)
    answered = 1_000 + answered_after
    log.send(answer, "bob", "alice", protocol="fipa-request", at=answered)
    if answer == P.AGREE:  # the inform that follows is bound by no deadline
        log.send(P.INFORM, "bob", "alice", protocol="fipa-request", at=answered + then_after)
    late = [r for r in reasons(log) if "reply-by" in r]
    assert len(late) == (1 if answered > reply_by else 0)
    assert reasons(log) == late  # and nothing else is wrong


def reply(log: Log, performative: P, sender: str, to: str, in_reply_to: str, at: int) -> None:
    message = AclMessage(
        id=f"m{len(log.recorded) + 1}",
        performative=performative,
        sender=sender,
        receivers=(to,),
        conversation_id="c1",
        in_reply_to=in_reply_to,
    )
    log.add(MessageSent(message=message, deliveries=(f"{to}#0",)), at=at)


def test_a_reply_outside_any_protocol_after_its_reply_by_is_a_violation() -> None:
    log = Log(at=1_000)
    asked = log.send(P.REQUEST, "client:cli", "bob", reply_by=3_000).event
    assert isinstance(asked, MessageSent)
    reply(log, P.INFORM, "bob#0", "client:cli", asked.message.id, at=15_900)
    assert reasons(log) == ["inform from bob 12.9 s after the request's reply-by 00:00:03.000"]
    assert conversation(log).outcome == "violated"


def test_a_reply_outside_any_protocol_in_time_or_to_no_deadline_is_fine() -> None:
    log = Log(at=1_000)
    asked = log.send(P.REQUEST, "client:cli", "bob", reply_by=3_000).event
    other = log.send(P.REQUEST, "client:cli", "bob").event
    assert isinstance(asked, MessageSent) and isinstance(other, MessageSent)
    reply(log, P.INFORM, "bob", "client:cli", asked.message.id, at=3_000)
    reply(log, P.INFORM, "bob", "client:cli", other.message.id, at=90_000)
    assert reasons(log) == []
