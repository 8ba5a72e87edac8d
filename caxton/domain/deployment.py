"""What a deployment may ask for: names, replicas, capabilities and limits."""

from __future__ import annotations

from collections.abc import Sequence

from caxton.domain.acl import is_valid_agent_name
from caxton.domain.errors import InvalidAgentSpec, quoted
from caxton.domain.events import Limits
from caxton.domain.ids import PLATFORM

MAX_REPLICAS = 64
MIN_MEMORY, MAX_MEMORY = 64 << 10, 4 << 30
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 1, 600_000
MAX_MAILBOX = 1_000_000
MAX_CAPABILITIES = 64
MAX_CONFIG_BYTES = 1 << 20


def validate_deployment(
    name: str,
    *,
    replicas: int,
    capabilities: Sequence[str],
    limits: Limits,
    config: str = "",
) -> None:
    """Raises `InvalidAgentSpec` naming the first field that cannot be honoured."""
    if not is_valid_agent_name(name) or name == PLATFORM:
        raise InvalidAgentSpec(
            "name",
            f"{quoted(name)} is not a valid agent name (letters, digits, '_', '-', '.'; "
            f"at most 128; {PLATFORM!r} is reserved)",
        )
    if not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidAgentSpec("replicas", f"must be between 1 and {MAX_REPLICAS}")
    if len(capabilities) > MAX_CAPABILITIES:
        raise InvalidAgentSpec("capability", f"at most {MAX_CAPABILITIES} capabilities")
    for capability in capabilities:
        if not is_valid_agent_name(capability):
            raise InvalidAgentSpec(
                "capability", f"{quoted(capability)} is not a valid capability name"
            )
    if not MIN_MEMORY <= limits.memory_bytes <= MAX_MEMORY:
        raise InvalidAgentSpec("memory", "must be between 64KiB and 4GiB")
    if not MIN_TIMEOUT_MS <= limits.timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidAgentSpec("timeout", "must be between 1ms and 10m")
    if not 1 <= limits.mailbox <= MAX_MAILBOX:
        raise InvalidAgentSpec("mailbox", f"must be between 1 and {MAX_MAILBOX} messages")
    size = len(config.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise InvalidAgentSpec("config", f"{size} bytes is over the limit of {MAX_CONFIG_BYTES}")
