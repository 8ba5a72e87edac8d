"""The upb codec reads and writes the same bytes and values as betterproto2 does."""

from __future__ import annotations

from typing import Any

import pytest

from caxton.shell.api.codec import FastCodec, RequestCodec
from caxton.shell.api.generated.caxton import v1

MESSAGES: list[Any] = [
    v1.SendRequest(
        message=v1.AclEnvelope(
            id="m-1",
            performative="request",
            sender="client:x",
            receivers=["a", "capability:b"],
            content='{"é": 1}',
            language="json",
            protocol="fipa-request",
            reply_by=0,  # present though zero: an optional field keeps it
        ),
        wait_ms=250,
    ),
    v1.SendRequest(message=v1.AclEnvelope()),  # an empty message, present
    v1.SendRequest(),
    v1.SendAcks(
        acks=[
            v1.SendAck(
                index=7,
                accepted=v1.SendReply(
                    message_id="m",
                    conversation_id="c",
                    deliveries=["a#0"],
                    dead_letters=[v1.DeadLetter(receiver="x", reason="no agent named 'x'")],
                ),
            ),
            v1.SendAck(index=2**40, code=3, error="content: not valid JSON"),
        ]
    ),
    v1.DeployRequest(name="a", component=b"\x00asm\xff", replicas=2, limits=v1.Limits()),
    v1.SetConfigRequest(agent="a", memory_bytes=0, mailbox=None, set_tools=True),
    v1.ListAgentsRequest(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_what_upb_writes_betterproto2_reads_as_the_same_message(message: Any) -> None:
    data = FastCodec().encode(message, type(message))
    assert type(message).parse(data) == message


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_what_betterproto2_writes_upb_reads_as_the_same_message(message: Any) -> None:
    kind = type(message)
    assert FastCodec().decode(bytes(message), kind) == message
    assert RequestCodec().decode(bytes(message), kind) == message


def test_an_optional_field_left_unset_stays_unset() -> None:
    decoded = FastCodec().decode(bytes(v1.AclEnvelope(id="x")), v1.AclEnvelope)
    assert decoded.reply_by is None
    assert FastCodec().decode(bytes(v1.AclEnvelope(reply_by=0)), v1.AclEnvelope).reply_by == 0


def test_an_unset_message_field_stays_unset() -> None:
    assert FastCodec().decode(b"", v1.SendRequest).message is None
