"""Identifiers, and the deterministic derivation of the ids agents' messages get.

Ids of messages an agent sends are derived from the message it was handling, so a
redelivery after a crash produces the same ids and the runtime drops the copies.
Fresh ids (from API calls) are made by the shell and passed in. Derived ids are exactly
26 lowercase hex characters, a shape the API refuses in ids clients choose: the two
spaces are disjoint, so a client cannot take an id an agent's message will get.
"""

from __future__ import annotations

import hashlib
import re

CAPABILITY_PREFIX = "capability:"
CLIENT_PREFIX = "client:"
PLATFORM = "caxton"
"""The sender of the platform's own messages (the `failure` after a dead letter)."""


_DERIVED = re.compile(r"[0-9a-f]{26}")


def derive_id(*parts: str) -> str:
    """A 26-hex-character id that depends only on `parts`."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=13).hexdigest()
    return digest


def is_derived_id(message_id: str) -> bool:
    """Whether `message_id` has the shape of ids the runtime derives (and clients may not use)."""
    return _DERIVED.fullmatch(message_id) is not None


def sent_message_id(cause_id: str, agent: str, index: int) -> str:
    """The id of the `index`-th message `agent` sends while handling `cause_id`."""
    return derive_id("msg", cause_id, agent, str(index))


def derived_conversation_id(message_id: str) -> str:
    """The conversation an agent opens when it sends without a conversation id."""
    return derive_id("conv", message_id)


def instance_key(agent: str, replica: int) -> str:
    """How one running instance is named in the log: `name#replica`."""
    return f"{agent}#{replica}"


def split_instance_key(key: str) -> tuple[str, int]:
    """The inverse of `instance_key`."""
    name, _, replica = key.rpartition("#")
    return name, int(replica)


def is_capability(address: str) -> bool:
    return address.startswith(CAPABILITY_PREFIX)


def is_client(address: str) -> bool:
    """External callers (the CLI, the Python client) are addressed as `client:<id>`."""
    return address.startswith(CLIENT_PREFIX)


def agent_stream(agent: str) -> str:
    return f"agent:{agent}"


def conversation_stream(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def node_stream(node: str) -> str:
    return f"node:{node}"


def shard_stream(shard: int) -> str:
    """Who held a shard of the cluster's agents, claim after claim."""
    return f"shard:{shard}"


def tool_stream(server: str) -> str:
    """Tool calls outside any conversation, and breaker changes outside one, of a server."""
    return f"tool:{server}"
