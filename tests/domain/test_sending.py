"""What the host fills in on agents' messages, and the platform's failures."""

from __future__ import annotations

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.errors import InvalidMessage
from caxton.domain.sending import complete_reply, outgoing, platform_failure, sent_by
from caxton.domain.tracing import child_traceparent

CAUSE = AclMessage(
    id="m1",
    performative=Performative.REQUEST,
    sender="client:c",
    receivers=("echo",),
    protocol="fipa-request",
    conversation_id="c1",
    reply_with="r1",
    traceparent="00-abc-def-01",
)


def test_a_reply_without_receivers_goes_to_the_sender_of_the_handled_message() -> None:
    completed = complete_reply({"performative": "inform", "in_reply_to": "m1"}, CAUSE)

    assert completed["receivers"] == ["client:c"]
    assert completed["conversation_id"] == "c1"
    assert completed["protocol"] == "fipa-request"
    assert completed["in_reply_to"] == "r1"


def test_a_message_with_receivers_or_answering_something_else_is_left_alone() -> None:
    addressed = {"performative": "inform", "receivers": ["bob"], "in_reply_to": "m1"}
    unrelated = {"performative": "inform", "in_reply_to": "m9"}

    assert complete_reply(addressed, CAUSE) is addressed
    assert complete_reply(unrelated, CAUSE) is unrelated


def test_what_an_agent_sends_gets_the_same_derived_id_when_handled_again() -> None:
    draft = AclMessage(id="", performative=Performative.INFORM, sender="", receivers=("bob",))

    first = sent_by(draft, agent="echo", cause=CAUSE, index=0)
    again = sent_by(draft, agent="echo", cause=CAUSE, index=0)
    second = sent_by(draft, agent="echo", cause=CAUSE, index=1)

    assert first == again and first.id != second.id
    assert first.sender == "echo"
    assert first.conversation_id
    assert first.traceparent == child_traceparent(first.id, CAUSE)


def test_the_platform_does_not_answer_its_own_failures() -> None:
    failure = platform_failure(CAUSE, "echo#0: trap: unreachable")

    assert failure is not None
    assert failure.sender == "caxton" and failure.receivers == ("client:c",)
    assert failure.performative is Performative.FAILURE
    assert platform_failure(failure, "again") is None


def test_outgoing_parses_completes_and_stamps_what_an_agent_sends() -> None:
    cause = AclMessage(
        id="m1",
        performative=Performative.REQUEST,
        sender="client:cli",
        receivers=("echo",),
        conversation_id="c1",
        reply_with="r1",
    )
    sent = outgoing(
        '{"performative": "inform", "in_reply_to": "r1", "content": "{}"}',
        agent="echo",
        cause=cause,
        index=0,
        max_content_bytes=1024,
    )
    assert (sent.sender, sent.receivers, sent.conversation_id) == ("echo", ("client:cli",), "c1")
    assert (
        sent.id
        == outgoing(
            '{"performative": "inform", "in_reply_to": "r1", "content": "{}"}',
            agent="echo",
            cause=cause,
            index=0,
            max_content_bytes=1024,
        ).id
    )  # derived, so a redelivery or a re-execution gets the same id
    with pytest.raises(InvalidMessage, match="message: not valid JSON"):
        outgoing("{oops", agent="echo", cause=cause, index=1, max_content_bytes=1024)
