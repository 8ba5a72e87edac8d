"""The Python client: `from caxton.client import CaxtonClient`."""

from caxton.shell.client import (
    AgentInfo,
    AlreadyExists,
    Busy,
    CaxtonClient,
    CaxtonError,
    ConversationInfo,
    InstanceInfo,
    InvalidArgument,
    InvokeTimeout,
    NotFound,
    SendResult,
    ServerUnavailable,
    Unauthenticated,
)

__all__ = [
    "AgentInfo",
    "AlreadyExists",
    "Busy",
    "CaxtonClient",
    "CaxtonError",
    "ConversationInfo",
    "InstanceInfo",
    "InvalidArgument",
    "InvokeTimeout",
    "NotFound",
    "SendResult",
    "ServerUnavailable",
    "Unauthenticated",
]
