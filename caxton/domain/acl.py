"""The FIPA-ACL message: the 22 performatives of SC00037, the envelope, and its validation."""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from caxton.domain import strict_json
from caxton.domain.errors import QUOTE_CHARS, InvalidMessage, bounded, quoted
from caxton.domain.frozen import replace
from caxton.domain.ids import CAPABILITY_PREFIX, CLIENT_PREFIX, is_derived_id


class Performative(StrEnum):
    """The communicative acts of FIPA SC00037, spelled as on the wire."""

    ACCEPT_PROPOSAL = "accept-proposal"
    AGREE = "agree"
    CANCEL = "cancel"
    CFP = "cfp"
    CONFIRM = "confirm"
    DISCONFIRM = "disconfirm"
    FAILURE = "failure"
    INFORM = "inform"
    INFORM_IF = "inform-if"
    INFORM_REF = "inform-ref"
    NOT_UNDERSTOOD = "not-understood"
    PROPAGATE = "propagate"
    PROPOSE = "propose"
    PROXY = "proxy"
    QUERY_IF = "query-if"
    QUERY_REF = "query-ref"
    REFUSE = "refuse"
    REJECT_PROPOSAL = "reject-proposal"
    REQUEST = "request"
    REQUEST_WHEN = "request-when"
    REQUEST_WHENEVER = "request-whenever"
    SUBSCRIBE = "subscribe"


PERFORMATIVES = frozenset(p.value for p in Performative)
PROTOCOLS = frozenset({"", "fipa-request", "fipa-query", "fipa-contract-net"})
JSON_LANGUAGE = "json"
DEFAULT_MAX_CONTENT_BYTES = 1 << 20
MAX_RECEIVERS = 1024
MAX_ADDRESS = 160
"""An address: a name of at most 128 characters, after `capability:` or `client:`."""
FIELD_LIMITS: tuple[tuple[str, int], ...] = (
    ("id", 128),
    ("performative", 32),
    ("sender", MAX_ADDRESS),
    ("language", 64),
    ("ontology", 256),
    ("protocol", 32),
    ("conversation_id", 128),
    ("reply_with", 128),
    ("in_reply_to", 128),
    ("traceparent", 256),
)
"""The most characters each text field may hold, checked before anything else is looked
at; `content` is limited in bytes (`max_content_bytes`), `receivers` to MAX_RECEIVERS
addresses of at most MAX_ADDRESS characters each."""
ENVELOPE_OVERHEAD_BYTES = 4 * sum(limit for _, limit in FIELD_LIMITS) + MAX_RECEIVERS * (
    MAX_ADDRESS + 4
)
"""What an envelope may hold beside its content, in UTF-8 bytes at the worst (about
170 KiB): a whole envelope, and so a `MessageSent` in the log, is bounded by it."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/\-]{1,128}$")
_TEXT_FAULT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
"""Control characters (they would break log lines) and lone surrogates (they are not
text: the log cannot store them), refused in the short text fields."""


def max_envelope_bytes(max_content_bytes: int) -> int:
    """The largest envelope, in UTF-8 bytes of its fields, that can be valid."""
    return max_content_bytes + ENVELOPE_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class AclMessage:
    """One FIPA-ACL message. Times are milliseconds since the Unix epoch."""

    id: str
    performative: Performative
    sender: str
    receivers: tuple[str, ...]
    content: str = ""
    language: str = JSON_LANGUAGE
    ontology: str = ""
    protocol: str = ""
    conversation_id: str = ""
    reply_with: str = ""
    in_reply_to: str = ""
    reply_by: int | None = None
    traceparent: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON envelope, as agents and the API see it."""
        return {
            "id": self.id,
            "performative": self.performative.value,
            "sender": self.sender,
            "receivers": list(self.receivers),
            "content": self.content,
            "language": self.language,
            "ontology": self.ontology,
            "protocol": self.protocol,
            "conversation_id": self.conversation_id,
            "reply_with": self.reply_with,
            "in_reply_to": self.in_reply_to,
            "reply_by": self.reply_by,
            "traceparent": self.traceparent,
        }

    def json(self) -> Any:
        """The content as parsed JSON: `reply.json()["tracking_number"]`. Raises ValueError
        saying whose content it was and why it is not JSON."""
        try:
            return strict_json.loads(self.content)
        except ValueError as exc:
            language = "" if self.language == JSON_LANGUAGE else f"; language {self.language!r}"
            raise ValueError(
                f"the content of {self.performative.value} {self.id} from {self.sender} "
                f"is not JSON ({exc}{language}): {quoted(self.content)}"
            ) from None


def is_valid_agent_name(name: str) -> bool:
    return bool(_NAME.match(name))


def validate_address(address: str, field: str) -> str:
    """An agent name, `capability:<name>` or `client:<id>`."""
    reason = _address_fault(address)
    if reason:
        raise InvalidMessage(field, reason)
    return address


@lru_cache(maxsize=4096)  # a few addresses recur in every message: check each once
def _address_fault(address: str) -> str:
    """Why `address` is not an address, or "" when it is one."""
    for prefix in (CAPABILITY_PREFIX, CLIENT_PREFIX):
        if address.startswith(prefix):
            if not _NAME.match(address[len(prefix) :]):
                return f"{quoted(address)} is not a valid {prefix[:-1]} address"
            return ""
    if not _NAME.match(address):
        return (
            f"{quoted(address)} is not an agent name (letters, digits, '_', '-', '.'; "
            "at most 128; or capability:<name>)"
        )
    return ""


def parse_performative(value: object) -> Performative:
    if not isinstance(value, str):
        raise InvalidMessage("performative", f"must be a string, not {type(value).__name__}")
    found = _PERFORMATIVE_OF.get(value)
    if found is None:
        raise InvalidMessage(
            "performative",
            f"unknown performative {quoted(value)}; "
            f"expected one of {', '.join(sorted(PERFORMATIVES))}",
        )
    return found


_PERFORMATIVE_OF = {p.value: p for p in Performative}
"""A dictionary lookup: `Performative(value)` goes through the enum's metaclass (~1 µs)."""


def _text(data: Mapping[str, Any], field: str, default: str = "") -> str:
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidMessage(field, f"must be a string, not {type(value).__name__}")
    return value


def _token(data: Mapping[str, Any], field: str) -> str:
    value = _text(data, field)
    if value and not _TOKEN.match(value):
        raise InvalidMessage(field, f"{quoted(value)} must be 1-128 of [A-Za-z0-9_.:/-]")
    return value


def _plain(data: Mapping[str, Any], field: str, default: str = "") -> str:
    """A free text field: any characters but control characters and lone surrogates."""
    value = _text(data, field, default)
    if _TEXT_FAULT.search(value):
        raise InvalidMessage(field, "must not contain control characters or lone surrogates")
    return value


def check_sizes(data: Mapping[str, Any], max_content_bytes: int) -> None:
    """Refuses a field over its limit (FIELD_LIMITS), before any other check reads it."""
    for field, value in data.items():
        if isinstance(value, str):
            limit = _LIMIT_OF.get(field)
            if limit is not None and len(value) > limit:
                raise InvalidMessage(field, _over(len(value), limit))
            # each character is at least one byte: over the limit without encoding it
            if limit is None and len(value) > max_content_bytes:
                raise InvalidMessage(
                    field, f"{len(value)} characters is over the limit of {max_content_bytes} bytes"
                )
        elif field == "receivers" and isinstance(value, list | tuple):
            if len(value) > MAX_RECEIVERS:
                raise InvalidMessage("receivers", f"at most {MAX_RECEIVERS} receivers")
            for i, receiver in enumerate(value):
                if isinstance(receiver, str) and len(receiver) > MAX_ADDRESS:
                    raise InvalidMessage(f"receivers[{i}]", _over(len(receiver), MAX_ADDRESS))


_LIMIT_OF = dict(FIELD_LIMITS)


def _over(size: int, limit: int) -> str:
    return f"{size} characters is over the limit of {limit}"


def validate_content(content: str, language: str, max_bytes: int) -> None:
    if content.isascii():  # as many bytes as characters: nothing to encode
        size = len(content)
    else:
        try:
            size = len(content.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidMessage(
                "content", f"is not text: a lone surrogate at character {exc.start}"
            ) from None
    if size > max_bytes:
        raise InvalidMessage("content", f"{size} bytes is over the limit of {max_bytes} bytes")
    if language == JSON_LANGUAGE and content and not _is_bare_json(content):
        try:
            strict_json.loads(content)
        except ValueError as exc:
            raise InvalidMessage("content", f"not valid JSON ({bounded(str(exc), 200)})") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_scan_json: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder(parse_constant=_no_constant)  # type: ignore[arg-type]  # typeshed's stub
)


def _is_bare_json(text: str) -> bool:
    """Whether `text` is one JSON value without space around it, asked of json's C
    scanner directly: `strict_json.loads` adds layers of Python calls, which cost more
    than the scan of a small content. It reads what this doubts, or says why not."""
    try:
        end: int = _scan_json(text, 0)[1]
    except (StopIteration, ValueError, RecursionError):
        return False
    return end == len(text)


# Checks that raise nothing, for the happy path of an agent's send
# (`sending.outgoing_draft`): each says whether `message_from_dict` accepts the value,
# its size included; `message_from_dict` says what is wrong with one it refuses.


def is_address(value: str) -> bool:
    """An address of at most MAX_ADDRESS characters (`validate_address`)."""
    return len(value) <= MAX_ADDRESS and not _address_fault(value)


def is_token(value: str, field: str) -> bool:
    """Empty, or a token within `field`'s limit (`id`, `conversation_id`, `reply_with`,
    `in_reply_to`; the regex alone lets a 129th character through, a trailing newline)."""
    return not value or (len(value) <= _LIMIT_OF[field] and _TOKEN.match(value) is not None)


def is_plain(value: str, field: str) -> bool:
    """Free text within `field`'s limit (`language`, `ontology`, `traceparent`)."""
    return len(value) <= _LIMIT_OF[field] and _TEXT_FAULT.search(value) is None


def is_content(content: str, language: str, max_bytes: int) -> bool:
    """`validate_content`."""
    try:
        validate_content(content, language, max_bytes)
    except InvalidMessage:
        return False
    return True


def message_from_dict(
    data: Mapping[str, Any],
    *,
    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
    require_id: bool = True,
) -> AclMessage:
    """Validates a JSON envelope and returns the message; raises `InvalidMessage`."""
    if not isinstance(data, Mapping):
        raise InvalidMessage("message", "must be a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        name = min(unknown, key=str)
        short = isinstance(name, str) and len(name) <= QUOTE_CHARS
        raise InvalidMessage(name if short else quoted(name), "is not an ACL envelope field")
    check_sizes(data, max_content_bytes)
    performative = parse_performative(data.get("performative"))
    receivers_raw = data.get("receivers", ())
    if isinstance(receivers_raw, str) or not isinstance(receivers_raw, list | tuple):
        raise InvalidMessage("receivers", "must be a list of addresses")
    if not receivers_raw:
        raise InvalidMessage("receivers", "must name at least one receiver")
    receivers: list[str] = []
    for i, r in enumerate(receivers_raw):
        if not isinstance(r, str):
            raise InvalidMessage(f"receivers[{i}]", "must be a string")
        receivers.append(validate_address(r, f"receivers[{i}]"))
    sender = _text(data, "sender")
    if sender:
        validate_address(sender, "sender")
    language = _plain(data, "language", JSON_LANGUAGE) or JSON_LANGUAGE
    content = _text(data, "content")
    validate_content(content, language, max_content_bytes)
    protocol = _text(data, "protocol")
    if protocol not in PROTOCOLS:
        raise InvalidMessage(
            "protocol",
            f"unknown protocol {quoted(protocol)}; expected one of {sorted(PROTOCOLS - {''})}",
        )
    reply_by = data.get("reply_by")
    if reply_by is not None and (
        isinstance(reply_by, bool) or not isinstance(reply_by, int) or reply_by < 0
    ):
        raise InvalidMessage("reply_by", "must be milliseconds since the Unix epoch")
    message_id = _token(data, "id")
    if require_id and not message_id:
        raise InvalidMessage("id", "is required")
    return AclMessage(
        id=message_id,
        performative=performative,
        sender=sender,
        receivers=tuple(receivers),
        content=content,
        language=language,
        ontology=_plain(data, "ontology"),
        protocol=protocol,
        conversation_id=_token(data, "conversation_id"),
        reply_with=_token(data, "reply_with"),
        in_reply_to=_token(data, "in_reply_to"),
        reply_by=reply_by,
        traceparent=_plain(data, "traceparent"),
    )


def reply_to(
    message: AclMessage, *, id: str, sender: str, performative: Performative, content: str
) -> AclMessage:
    """A reply in the same conversation and protocol, addressed to the original sender."""
    return AclMessage(
        id=id,
        performative=performative,
        sender=sender,
        receivers=(message.sender,),
        content=content,
        protocol=message.protocol,
        conversation_id=message.conversation_id,
        in_reply_to=message.reply_with or message.id,
        traceparent=message.traceparent,
    )


def is_final_reply(message: AclMessage) -> bool:
    """Whether a reply settles a request for whoever waits on it: an `agree` only promises one."""
    return message.performative is not Performative.AGREE


def from_client(message: AclMessage, *, id: str, sender: str, conversation_id: str) -> AclMessage:
    """A message from outside, with the fields the server owns filled in.

    Outside callers speak only as clients (`client:<id>`): an agent's name, or the
    platform's, cannot be borrowed through the API.
    """
    if message.sender and not message.sender.startswith(CLIENT_PREFIX):
        raise InvalidMessage(
            "sender",
            f"{quoted(message.sender)}: callers of the API send as client:<id> (or leave it empty)",
        )
    if message.id and is_derived_id(message.id):
        raise InvalidMessage(
            "id",
            f"{quoted(message.id)}: ids of exactly 26 lowercase hex characters are the ones the "
            "runtime gives agents' messages; choose another id (or leave it empty)",
        )
    message_id = message.id or id
    return replace(
        message,
        id=message_id,
        sender=message.sender or sender,
        conversation_id=message.conversation_id or conversation_id,
        reply_with=message.reply_with or message_id,
    )


_FIELDS = frozenset(AclMessage.__dataclass_fields__)
