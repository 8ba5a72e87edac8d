"""An agent's send decoded straight into a draft: the same message, or the same refusal,
as the envelope parsed as any JSON and checked field by field."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain.acl import MAX_RECEIVERS, PERFORMATIVES, AclMessage, Performative
from caxton.domain.errors import InvalidMessage
from caxton.domain.frozen import replace
from caxton.domain.sending import outgoing, outgoing_draft, outgoing_envelope
from caxton.domain.tracing import stamped
from caxton.shell.runtime.context import CallContext, decode_draft
from caxton.shell.wasm import SendRefused
from tests.support import SteppedClock

FIELDS = (
    "id",
    "performative",
    "sender",
    "receivers",
    "content",
    "language",
    "ontology",
    "protocol",
    "conversation_id",
    "reply_with",
    "in_reply_to",
    "reply_by",
    "traceparent",
)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def checked(text: str, cause: AclMessage | None, max_content_bytes: int) -> AclMessage | str:
    """The field-by-field path: what `CallContext.send` did before the draft decoder."""
    try:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return outgoing(
                text, agent="b0", cause=cause, index=0, max_content_bytes=max_content_bytes
            )
        return outgoing_envelope(
            data, agent="b0", cause=cause, index=0, max_content_bytes=max_content_bytes
        )
    except InvalidMessage as exc:
        return str(exc)


def sent(text: str, cause: AclMessage | None, max_content_bytes: int) -> AclMessage | str:
    """What `CallContext.send` buffers for `text`, or the reason it refuses it."""
    context = CallContext(
        agent="b0", cause=cause, clock=SteppedClock(), max_content_bytes=max_content_bytes
    )
    try:
        message_id = context.send(text)
    except SendRefused as refused:
        return refused.reason
    assert context.sent[-1].id == message_id
    return context.sent[-1]


def drafted(text: str, cause: AclMessage | None, max_content_bytes: int) -> AclMessage | None:
    """The message the draft path builds, or None where it leaves the envelope to the other."""
    return outgoing_draft(
        decode_draft(text), agent="b0", cause=cause, index=0, max_content_bytes=max_content_bytes
    )


# --- strategies -----------------------------------------------------------------------

LENGTHS = (31, 32, 33, 63, 64, 65, 127, 128, 129, 159, 160, 161, 255, 256, 257)
EDGE_TEXTS = [
    "",
    "x",
    "m1",
    "r1",
    "c1",
    "a0",
    "rally-0",
    "a.b_c-d",
    "a/b:c",
    "json",
    "sl",
    "fipa-request",
    "fipa-query",
    "fipa-contract-net",
    "inform",
    "request",
    "capability:search",
    "client:c",
    "client:",
    "caxton",
    TRACEPARENT,
    "x\n",
    "a b",
    "\x00",
    "\x7f",
    "\t",
    "ünï",
    "\ud800",
    "😀",
    *("a" * n for n in LENGTHS),
    *("a" * (n - 1) + "\n" for n in LENGTHS),  # the token and name regexes let "\n" end them
    *("capability:" + "a" * (n - 11) for n in LENGTHS),
]
EDGE_CONTENTS = [
    "{}",
    " {} ",
    "{",
    "1 2",
    "NaN",
    '{"a": NaN}',
    "[Infinity]",
    '"\\ud800"',
    '"\\x"',
    "[" * 40 + "]" * 40,
    "12345678901234567890123456789",
    "(sum 1 2)",
    "é" * 40,
]
EDGE_INTEGERS = [0, 1, -1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, 10**30]
texts = st.one_of(
    st.sampled_from(EDGE_TEXTS),
    st.text(st.characters(codec="utf-8") | st.sampled_from("\ud800\udfff"), max_size=6),
)
integers = st.one_of(st.sampled_from(EDGE_INTEGERS), st.integers())
scalars = st.one_of(texts, st.none(), st.booleans(), integers, st.floats(allow_nan=False))
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(texts, scalars, max_size=2)
)


def json_texts(strings: st.SearchStrategy[str], numbers: st.SearchStrategy[float]) -> Any:
    """JSON text of values made of these strings and numbers (and ints, lists, objects)."""
    return st.recursive(
        st.none() | st.booleans() | integers | numbers | strings,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
        max_leaves=6,
    ).map(lambda v: json.dumps(v, ensure_ascii=False))


json_contents = json_texts(texts, st.floats(allow_nan=False))
"""Mostly JSON: Infinity and lone surrogates are not."""
valid_json_contents = json_texts(
    st.text(st.characters(codec="utf-8"), max_size=6),
    st.floats(allow_nan=False, allow_infinity=False),
)
contents = st.one_of(
    json_contents,
    json_contents.map(lambda t: f" {t}\n"),
    st.sampled_from(EDGE_CONTENTS),
    texts,
)
addresses = st.one_of(
    st.sampled_from(["a0", "b0", "echo", "capability:search", "client:c", "caxton"]), texts
)


@st.composite
def causes(draw: st.DrawFn) -> AclMessage | None:
    if draw(st.booleans()):
        return None
    cause = AclMessage(
        id=draw(st.sampled_from(["m1", "0123456789abcdef0123456789", "bad id", ""])),
        performative=Performative.REQUEST,
        sender=draw(st.sampled_from(["a0", "client:c", "", "bad name!", "a" * 129 + "\n"])),
        receivers=("b0",),
        protocol=draw(st.sampled_from(["", "fipa-request", "nonsense"])),
        conversation_id=draw(st.sampled_from(["", "c1", "bad conv!", "a" * 129])),
        reply_with=draw(st.sampled_from(["", "r1", "bad token!", "a" * 129])),
        traceparent=draw(st.sampled_from(["", TRACEPARENT, "garbage"])),
    )
    return stamped(cause) if draw(st.booleans()) else cause


def field_values(name: str, cause: AclMessage | None) -> st.SearchStrategy[Any]:
    """Values for `name`, mostly of the right shape, the cause's where a reply needs them."""
    replies = [cause.id, cause.reply_with] if cause is not None else []
    shaped: dict[str, st.SearchStrategy[Any]] = {
        "performative": st.sampled_from(sorted(PERFORMATIVES)) | st.sampled_from(["INFORM", ""]),
        "receivers": st.lists(addresses, max_size=3) | st.sampled_from([[], ""]),
        "content": contents,
        "language": st.sampled_from(["json", "", "sl"]),
        "protocol": st.sampled_from(["", "fipa-request", "fipa-query", "nonsense"]),
        "in_reply_to": st.sampled_from([*replies, "m9"]) if replies else texts,
        "reply_by": integers,
    }
    return st.one_of(shaped.get(name, texts), values)


def valid_fields(draw: st.DrawFn, cause: AclMessage | None) -> list[tuple[str, Any]]:
    """The fields of an envelope every check accepts, as agents write them: a reply to
    `cause` without receivers, or a message with receivers; all fields or a few."""
    fields: list[tuple[str, Any]] = [
        ("performative", draw(st.sampled_from(sorted(PERFORMATIVES)))),
        ("content", draw(valid_json_contents)),
    ]
    if cause is not None and draw(st.booleans()):
        fields.append(("in_reply_to", draw(st.sampled_from([cause.id, cause.reply_with]))))
    else:
        fields.append(("receivers", draw(st.lists(st.sampled_from(RECEIVERS), min_size=1))))
    for name, strategy in OPTIONAL.items():
        if draw(st.booleans()):
            fields.append((name, draw(strategy)))
    return draw(st.permutations(fields))


RECEIVERS = ["a0", "capability:x", "client:c"]
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "language": st.sampled_from(["json", ""]),
    "ontology": st.sampled_from(["", "orders"]),
    "protocol": st.sampled_from(["", "fipa-request"]),
    "conversation_id": st.sampled_from(["", "c1"]),
    "reply_with": st.sampled_from(["", "r9"]),
    "reply_by": st.none() | st.integers(0, 1 << 62),
    "traceparent": st.sampled_from(["", TRACEPARENT]),
    "id": st.sampled_from(["", "mine"]),
    "sender": st.sampled_from(["", "b0"]),
}


def encoded(fields: list[tuple[str, Any]], ascii_only: bool) -> str:
    """JSON text of an object with these fields in this order, repeated keys kept."""
    pairs = (f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=ascii_only)}" for k, v in fields)
    return "{" + ",".join(pairs) + "}"


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[str, AclMessage | None, int]:
    """JSON text of an envelope, valid or a few changes away from valid (a field changed,
    dropped, added or repeated, unknown keys, text that is not one JSON object), the
    message it answers, and a content limit."""
    cause = draw(causes())
    fields = valid_fields(draw, cause)
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["set", "set", "add", "drop"]))
        if change == "drop" and fields:
            del fields[draw(st.integers(0, len(fields) - 1))]
            continue
        name = draw(st.sampled_from(FIELDS) | st.sampled_from(["extra", "Performative"]))
        value = draw(field_values(name, cause))
        if change == "set":
            fields = [(k, value if k == name else v) for k, v in fields]
        if change == "add" or name not in dict(fields):
            fields.append((name, value))
    text = encoded(fields, ascii_only=draw(st.booleans()))
    text = draw(st.sampled_from([text] * 6 + [f" {text}\n", f"{text}x", f"[{text}]", text[:-1]]))
    return text, cause, draw(st.sampled_from([1 << 20, 1 << 20, 64, 16]))


@st.composite
def valid_envelopes(draw: st.DrawFn) -> tuple[str, AclMessage | None]:
    """An envelope every check accepts, answering a cause whose fields are valid too."""
    cause = draw(causes().filter(lambda c: c is None or valid_cause(c)))
    return encoded(valid_fields(draw, cause), ascii_only=draw(st.booleans())), cause


def valid_cause(cause: AclMessage) -> bool:
    """Whether a reply completed from `cause` is valid (the property of `causes` above)."""
    return (
        cause.id != "bad id"
        and cause.sender in ("a0", "client:c")
        and cause.conversation_id in ("", "c1")
        and cause.reply_with in ("", "r1")
        and cause.protocol != "nonsense"
    )


# --- properties -----------------------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(envelopes())
def test_a_send_is_the_same_message_or_the_same_refusal_as_checked_field_by_field(
    case: tuple[str, AclMessage | None, int],
) -> None:
    text, cause, limit = case
    assert sent(text, cause, limit) == checked(text, cause, limit)


@settings(max_examples=300, deadline=None)
@given(valid_envelopes())
def test_what_agents_send_is_built_from_the_draft(case: tuple[str, AclMessage | None]) -> None:
    text, cause = case
    message = drafted(text, cause, 1 << 20)
    assert message is not None
    assert message == checked(text, cause, 1 << 20)


# --- examples -------------------------------------------------------------------------

CAUSE = stamped(
    AclMessage(
        id="0123456789abcdef0123456789",
        performative=Performative.INFORM,
        sender="a0",
        receivers=("b0",),
        protocol="fipa-request",
        conversation_id="rally-0",
    )
)


def test_the_reply_of_the_test_agent_and_a_send_of_the_python_sdk_are_built_from_the_draft() -> (
    None
):
    reply = '{"performative":"inform","in_reply_to":"0123456789abcdef0123456789","content":"{}"}'
    sdk = json.dumps(
        {
            "performative": "inform",
            "receivers": ["a0"],
            "content": '{"n":1}',
            "language": "json",
            "ontology": "",
            "protocol": "",
            "conversation_id": "rally-0",
            "reply_with": "",
            "in_reply_to": "",
            "reply_by": None,
        },
        separators=(",", ":"),
    )
    for text in (reply, sdk):
        assert drafted(text, CAUSE, 1 << 20) == checked(text, CAUSE, 1 << 20) != None  # noqa: E711


def test_a_null_conversation_or_protocol_in_a_reply_is_not_the_cause_s() -> None:
    reply = '{"performative":"inform","in_reply_to":"0123456789abcdef0123456789"'
    absent, null_conversation, null_protocol = (
        reply + "}",
        reply + ',"conversation_id":null}',
        reply + ',"protocol":null}',
    )

    continued = sent(absent, CAUSE, 1024)
    opened = sent(null_conversation, CAUSE, 1024)
    unprotocolled = sent(null_protocol, CAUSE, 1024)

    assert isinstance(continued, AclMessage)
    assert (continued.conversation_id, continued.protocol) == ("rally-0", "fipa-request")
    assert isinstance(opened, AclMessage) and opened.conversation_id not in ("", "rally-0")
    assert isinstance(unprotocolled, AclMessage) and unprotocolled.protocol == ""
    assert opened == checked(null_conversation, CAUSE, 1024)
    assert unprotocolled == checked(null_protocol, CAUSE, 1024)


def test_every_edge_value_in_every_field_is_the_same_message_or_refusal() -> None:
    answered = replace(CAUSE, reply_with="r1")
    bases: list[tuple[dict[str, Any], AclMessage | None]] = [
        ({"performative": "inform", "receivers": ["a0"], "content": "{}"}, None),
        ({"performative": "inform", "in_reply_to": CAUSE.id}, CAUSE),
        ({"performative": "inform", "in_reply_to": "r1", "language": "sl"}, answered),
    ]
    edges: list[Any] = [
        *EDGE_TEXTS,
        *EDGE_CONTENTS,
        *EDGE_INTEGERS,
        None,
        True,
        1.5,
        [],
        ["a0", "x\n"],
        {},
    ]
    for base, cause in bases:
        for name in FIELDS:
            for value in edges:
                for ascii_only in (True, False):
                    text = json.dumps({**base, name: value}, ensure_ascii=ascii_only)
                    assert sent(text, cause, 64) == checked(text, cause, 64), text


def test_a_deadline_orjson_reads_as_a_float_is_refused_as_before() -> None:
    for reply_by in ((1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64):
        text = f'{{"performative":"inform","receivers":["a0"],"reply_by":{reply_by}}}'
        assert sent(text, None, 1024) == checked(text, None, 1024)
    refused = sent(
        '{"performative":"inform","receivers":["a0"],"reply_by":18446744073709551616}', None, 1024
    )
    assert refused == "reply_by: must be milliseconds since the Unix epoch"


def test_more_receivers_than_allowed_are_refused_as_before() -> None:
    for count in (MAX_RECEIVERS, MAX_RECEIVERS + 1):
        text = json.dumps({"performative": "inform", "receivers": ["a0"] * count})
        assert sent(text, None, 1024) == checked(text, None, 1024)
    assert sent(text, None, 1024) == f"receivers: at most {MAX_RECEIVERS} receivers"
