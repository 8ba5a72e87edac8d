"""ACL envelope validation: what is accepted, and the field and reason of what is not."""

from __future__ import annotations

from typing import Any

import pytest

from caxton.domain import PERFORMATIVES, InvalidMessage, Performative, message_from_dict


def envelope(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "m1",
        "performative": "request",
        "sender": "alice",
        "receivers": ["bob"],
        "content": '{"task": "sum"}',
    }
    data.update(changes)
    return data


def rejected(**changes: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        message_from_dict(envelope(**changes))
    return caught.value


def test_all_22_performatives_are_accepted() -> None:
    assert len(PERFORMATIVES) == 22
    for performative in sorted(PERFORMATIVES):
        message = message_from_dict(envelope(performative=performative))
        assert message.performative == Performative(performative)


def test_an_unknown_performative_is_rejected_with_the_known_ones_listed() -> None:
    error = rejected(performative="shout")
    assert error.field == "performative"
    assert "unknown performative 'shout'" in error.reason
    assert "accept-proposal" in error.reason


def test_content_that_is_not_json_is_rejected() -> None:
    error = rejected(content="{not json")
    assert error.field == "content"
    assert error.reason.startswith("not valid JSON")


def test_content_in_another_language_is_not_parsed() -> None:
    assert message_from_dict(envelope(content="(sum 1 2)", language="sl")).language == "sl"


def test_content_over_the_size_limit_is_rejected() -> None:
    with pytest.raises(InvalidMessage, match="over the limit of 10 bytes"):
        message_from_dict(envelope(content='"' + "x" * 20 + '"'), max_content_bytes=10)


@pytest.mark.parametrize(
    ("receivers", "field", "reason"),
    [
        ("bob", "receivers", "must be a list of addresses"),
        ([], "receivers", "must name at least one receiver"),
        ([42], "receivers[0]", "must be a string"),
        (["bob", "no spaces"], "receivers[1]", "is not an agent name"),
        (["capability:"], "receivers[0]", "not a valid capability address"),
    ],
)
def test_bad_receivers_are_rejected(receivers: object, field: str, reason: str) -> None:
    error = rejected(receivers=receivers)
    assert error.field == field
    assert reason in error.reason


def test_capability_and_client_receivers_are_accepted() -> None:
    message = message_from_dict(envelope(receivers=["capability:search", "client:cli-1"]))
    assert message.receivers == ("capability:search", "client:cli-1")


@pytest.mark.parametrize("reply_by", ["soon", 1.5, True, -1])
def test_reply_by_must_be_milliseconds(reply_by: object) -> None:
    assert rejected(reply_by=reply_by).field == "reply_by"


def test_reply_by_in_milliseconds_is_kept() -> None:
    assert message_from_dict(envelope(reply_by=1_700_000_000_000)).reply_by == 1_700_000_000_000


def test_an_unknown_protocol_is_rejected() -> None:
    assert rejected(protocol="fipa-auction").field == "protocol"


def test_an_unknown_field_is_rejected() -> None:
    assert rejected(priority=1).field == "priority"


def test_a_missing_id_is_rejected_unless_the_host_fills_it() -> None:
    data = envelope()
    del data["id"]
    with pytest.raises(InvalidMessage, match="id: is required"):
        message_from_dict(data)
    assert message_from_dict(data, require_id=False).id == ""
