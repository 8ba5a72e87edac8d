"""Every envelope field has a size limit checked first; error texts quote input in bounded
excerpts; JSON content is RFC 8259 JSON; client ids cannot take the ids agents' messages get."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caxton.domain import InvalidMessage, message_from_dict
from caxton.domain.acl import (
    FIELD_LIMITS,
    MAX_ADDRESS,
    MAX_RECEIVERS,
    AclMessage,
    Performative,
    from_client,
    max_envelope_bytes,
)
from caxton.domain.errors import QUOTE_CHARS, quoted
from caxton.domain.ids import derived_conversation_id, is_derived_id, sent_message_id
from caxton.domain.sending import outgoing, platform_failure
from caxton.domain.tools import parse_arguments
from tests.domain.test_acl_validation import envelope, rejected

HUGE = 5 << 20
SHORT_ERROR = 400
"""No error text is longer than this, whatever the input."""


@pytest.mark.parametrize(("field", "limit"), FIELD_LIMITS)
def test_a_text_field_one_past_its_limit_is_refused_by_its_size(field: str, limit: int) -> None:
    error = rejected(**{field: "x" * (limit + 1)})
    assert error.field == field
    assert error.reason == f"{limit + 1} characters is over the limit of {limit}"


@pytest.mark.parametrize("field", [*(f for f, _ in FIELD_LIMITS), "content"])
def test_a_5_mib_field_is_refused_with_a_short_error(field: str) -> None:
    error = rejected(**{field: "x" * HUGE})
    assert error.field == field
    assert "over the limit" in error.reason
    assert len(str(error)) < SHORT_ERROR


def test_a_receiver_over_the_address_limit_is_refused_by_its_size() -> None:
    error = rejected(receivers=["bob", "x" * HUGE])
    assert error.field == "receivers[1]"
    assert error.reason == f"{HUGE} characters is over the limit of {MAX_ADDRESS}"


def test_too_many_receivers_are_refused_before_any_is_looked_at() -> None:
    error = rejected(receivers=[object()] * (MAX_RECEIVERS + 1))
    assert (error.field, error.reason) == ("receivers", f"at most {MAX_RECEIVERS} receivers")


def test_a_field_at_its_limit_is_accepted() -> None:
    message = message_from_dict(
        envelope(ontology="o" * 256, language="l" * 64, traceparent="t" * 256, id="i" * 128)
    )
    assert len(message.ontology) == 256


def test_an_unknown_field_with_a_huge_name_is_quoted_short() -> None:
    error = rejected(**{"x" * HUGE: 1})
    assert len(str(error)) < SHORT_ERROR
    assert f"({HUGE} characters)" in error.field


@pytest.mark.parametrize("content", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_nan_and_infinity_are_not_json_content(content: str) -> None:
    error = rejected(content=content)
    assert error.field == "content"
    assert "RFC 8259 has no NaN or Infinity" in error.reason


def test_json_nested_too_deep_is_refused_with_a_reason() -> None:
    error = rejected(content="[" * 100_000 + "]" * 100_000)
    assert error.field == "content"
    assert len(str(error)) < SHORT_ERROR


@pytest.mark.parametrize("field", ["ontology", "language", "traceparent"])
def test_control_characters_are_refused_in_free_text_fields(field: str) -> None:
    error = rejected(**{field: "a\nb"})
    assert (error.field, error.reason) == (
        field,
        "must not contain control characters or lone surrogates",
    )


@pytest.mark.parametrize("field", ["ontology", "language", "traceparent", "content"])
def test_a_lone_surrogate_is_refused_the_log_could_not_store_it(field: str) -> None:
    value = '"\ud800"' if field == "content" else "a\ud800"
    error = rejected(**{field: value, "language": "text"} if field == "content" else {field: value})
    assert error.field == field


def test_an_invalid_value_is_quoted_in_a_bounded_excerpt() -> None:
    text = quoted("p" * HUGE)
    assert len(text) < 2 * QUOTE_CHARS + 40
    assert text.endswith(f"({HUGE} characters)")
    assert quoted("shout") == "'shout'"


def test_an_envelope_is_bounded_by_its_content_limit_and_the_overhead() -> None:
    largest = envelope(
        content='"' + "x" * ((1 << 20) - 2) + '"',
        receivers=["a" * 128] * MAX_RECEIVERS,
        **{f: "é" * limit for f, limit in FIELD_LIMITS if f in ("ontology", "traceparent")},
    )
    message = message_from_dict(largest)
    size = sum(len(str(v).encode()) for v in message.to_dict().values())
    assert size <= max_envelope_bytes(1 << 20)


# --- ids ---------------------------------------------------------------------------


def client_message(message_id: str) -> AclMessage:
    return AclMessage(id=message_id, performative=Performative.INFORM, sender="", receivers=("b",))


def test_a_client_cannot_choose_the_id_an_agents_reply_will_get() -> None:
    next_reply = sent_message_id("m1", "echo", 0)
    with pytest.raises(InvalidMessage) as refused:
        from_client(client_message(next_reply), id="x", sender="client:c", conversation_id="c")
    assert refused.value.field == "id"
    assert "26 lowercase hex" in refused.value.reason


@pytest.mark.parametrize("message_id", ["order-17", "0123456789abcdef0123456789abcdef", "A" * 26])
def test_other_client_ids_are_kept(message_id: str) -> None:
    message = from_client(
        client_message(message_id), id="x", sender="client:c", conversation_id="c"
    )
    assert message.id == message_id


@given(cause=st.text(max_size=50), agent=st.text(max_size=20), index=st.integers(0, 1000))
def test_every_id_the_runtime_derives_is_in_the_reserved_space(
    cause: str, agent: str, index: int
) -> None:
    message_id = sent_message_id(cause, agent, index)
    assert is_derived_id(message_id)
    assert is_derived_id(derived_conversation_id(message_id))


def test_the_platforms_failure_ids_are_in_the_reserved_space() -> None:
    message = message_from_dict(envelope(sender="client:c"))
    failure = platform_failure(message, "no agent")
    assert failure is not None and is_derived_id(failure.id)


# --- any input ---------------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=300),
    st.integers(0, 3).map(lambda n: "z" * (10**n * 300)),
    st.lists(st.text(max_size=200), max_size=5),
)
envelopes = st.dictionaries(
    st.sampled_from([*(f for f, _ in FIELD_LIMITS), "content", "receivers", "reply_by"])
    | st.text(max_size=300),
    values,
    max_size=14,
)


@given(data=envelopes)
def test_no_envelope_makes_validation_raise_anything_but_a_short_invalid_message(
    data: dict[str, Any],
) -> None:
    try:
        message_from_dict(data)
    except InvalidMessage as e:
        assert len(str(e)) < SHORT_ERROR, str(e)[:500]


# --- JSON from agents and tool callers -------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_an_agents_envelope_nested_too_deep_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidMessage) as refused:
        outgoing(DEEP, agent="a", cause=None, index=0, max_content_bytes=1 << 20)
    assert refused.value.reason == "not valid JSON (nested too deeply to read)"


@pytest.mark.parametrize("args", [DEEP, '{"x": NaN}'])
def test_tool_arguments_that_are_not_readable_json_are_refused_with_a_reason(args: str) -> None:
    reason = parse_arguments(args)
    assert isinstance(reason, str) and reason.startswith("arguments are not valid JSON (")
