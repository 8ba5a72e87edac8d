"""The runtime's exception tree; the API maps each to one gRPC status.

NodeError
├── AgentNotFound        no agent of that name is deployed
├── AgentExists          deploy refused: the name is taken and --replace was not given
├── MailboxFull          backpressure: the receiver's mailbox is at its limit
├── LogFailed            an append failed; the node refuses work until restarted
├── LogUnreachable       a cluster's node cannot reach the shared log: no new work meanwhile
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
    def __init__(self, cause: BaseException, *, rejoins: bool = False) -> None:
        then = (
            "this node rejoins its cluster once the shared log answers: send through "
            "another node meanwhile (a message not acknowledged may have been accepted: "
            "retry it with the same id)"
            if rejoins
            else "the server must be restarted"
        )
        super().__init__(f"the event log refused an append ({cause}); {then}")


class LogUnreachable(NodeError):
    def __init__(self, node: str, why: str) -> None:
        super().__init__(
            f"node {node} cannot reach the shared log ({why}): it takes no new work until it "
            "can, and gives its agents up to other nodes if that lasts a lease; send through "
            "another node of the cluster"
        )
