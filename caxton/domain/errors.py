"""The domain's exception tree (the shell translates it) and how error texts quote input.

DomainError
├── InvalidMessage      an ACL envelope that breaks a rule (field, reason)
├── InvalidAgentSpec    a deployment request that cannot be honoured
└── InvalidDigest       a component digest in neither the bare nor the `sha256:` form
"""

from __future__ import annotations

import reprlib

QUOTE_CHARS = 64
"""How much of a bad value an error text quotes: input can be megabytes, and error texts
travel in gRPC status messages, logs and span attributes."""
REASON_CHARS = 4096
"""The longest reason text (a guest's error, a trap) that is logged or recorded."""

_QUOTE = reprlib.Repr()  # keyword arguments only from Python 3.12
_QUOTE.maxstring = _QUOTE.maxother = QUOTE_CHARS
_QUOTE.maxlist, _QUOTE.maxlevel = 4, 2


def quoted(value: object) -> str:
    """`repr(value)`, bounded: a long string keeps its head and tail and says its length.
    reprlib bounds each string by its characters, not by its escaped form (a character
    outside the BMP shows as ten), so the whole text is bounded too."""
    text = _QUOTE.repr(value)
    if len(text) > 2 * QUOTE_CHARS:
        text = f"{text[: 2 * QUOTE_CHARS]}…"
    if isinstance(value, str | bytes) and len(value) > QUOTE_CHARS:
        return f"{text} ({len(value)} {'bytes' if isinstance(value, bytes) else 'characters'})"
    return text


def bounded(text: str, limit: int = REASON_CHARS) -> str:
    """`text` cut to `limit` characters, marked where it was cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class DomainError(Exception):
    """Base of every error the pure core raises."""


class InvalidMessage(DomainError):
    """An ACL envelope that breaks a rule; `field` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidAgentSpec(DomainError):
    """A deployment or configuration that cannot be honoured."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidDigest(DomainError):
    """A component digest that is neither 64 lowercase hex digits nor `sha256:` and them."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"digest: {reason}")
        self.reason = reason
