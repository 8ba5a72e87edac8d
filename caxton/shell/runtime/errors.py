"""The runtime's exception tree; the API maps each to one gRPC status.

NodeError
├── AgentNotFound        no agent of that name is deployed
├── AgentExists          deploy refused: the name is taken and --replace was not given
├── MailboxFull          backpressure: the receiver's mailbox is at its limit
├── LogFailed            an append failed; the node refuses work until restarted
└── NodeStopping         the node is shutting down
"""

from __future__ import annotations

from caxton.domain.errors import quoted


class NodeError(Exception):
    """Base of the runtime's errors."""


class AgentNotFound(NodeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {quoted(name)} is deployed (see 'caxton agent list')")
        self.name = name


class AgentExists(NodeError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"an agent named {quoted(name)} is already deployed; remove it first or pass --replace"
        )
        self.name = name


class MailboxFull(NodeError):
    def __init__(self, receiver: str, size: int) -> None:
        super().__init__(f"{receiver}: mailbox full ({size} messages); retry later")
        self.receiver = receiver


class NodeStopping(NodeError):
    def __init__(self) -> None:
        super().__init__("the server is shutting down")


class LogFailed(NodeError):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the event log refused an append ({cause}); the server must be restarted")
