"""The runtime's exception tree; the API maps each to one gRPC status.

NodeError
├── AgentNotFound        no agent of that name is deployed
├── AgentExists          deploy refused: the name is taken and --replace was not given
├── InvalidDeployment    a deploy request that cannot be honoured (bad name, limits, component)
├── MessageRefused       a send that fails validation (field and reason)
├── MailboxFull          backpressure: the receiver's mailbox is at its limit
└── NodeStopping         the node is shutting down
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of the runtime's errors."""


class AgentNotFound(NodeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {name!r} is deployed (see 'caxton agent list')")
        self.name = name


class AgentExists(NodeError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"an agent named {name!r} is already deployed; remove it first or pass --replace"
        )
        self.name = name


class InvalidDeployment(NodeError):
    """A deployment request that cannot be honoured."""


class MessageRefused(NodeError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MailboxFull(NodeError):
    def __init__(self, receiver: str, size: int) -> None:
        super().__init__(f"{receiver}: mailbox full ({size} messages); retry later")
        self.receiver = receiver


class NodeStopping(NodeError):
    def __init__(self) -> None:
        super().__init__("the server is shutting down")
