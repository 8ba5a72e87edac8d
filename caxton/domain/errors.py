"""The domain's exception tree; the shell translates these at its boundaries.

DomainError
├── InvalidMessage      an ACL envelope that breaks a rule (field, reason)
├── InvalidAgentSpec    a deployment request that cannot be honoured
└── InvalidDigest       a component digest in neither the bare nor the `sha256:` form
"""

from __future__ import annotations


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
