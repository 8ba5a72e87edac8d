"""An agent configuration file (`agent-config.yaml`) read from its parsed document.

    name: order-processor
    version: 1.0.0
    runtime: wasm
    capabilities: [order-processing, inventory-checking]
    resources: {memory: 128MB, timeout: 30s}

Every key is optional here; `caxton agent deploy` says what is missing once its flags
are merged in. A key this module does not know is an error naming it and the keys it
knows: a misspelt `resources.memroy` must not deploy with the default memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caxton.domain.errors import InvalidAgentSpec, quoted
from caxton.domain.units import parse_duration_ms, parse_size_bytes

RUNTIMES = ("wasm",)
TOP_KEYS = (
    "name",
    "version",
    "runtime",
    "capabilities",
    "replicas",
    "resources",
    "tools",
    "config",
)
RESOURCE_KEYS = ("memory", "timeout", "mailbox")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """What the file says; None (or empty) where it says nothing."""

    name: str | None = None
    version: str | None = None
    capabilities: tuple[str, ...] | None = None
    replicas: int | None = None
    memory_bytes: int | None = None
    timeout_ms: int | None = None
    mailbox: int | None = None
    tools: tuple[str, ...] | None = None
    init_config: str = ""
    """The `config` key as JSON text, what the agent's `init` receives."""


def agent_config(document: object) -> AgentConfig:
    """The configuration in `document` (a YAML or JSON file's value). Raises
    `InvalidAgentSpec` whose field is the key's path (`resources.memory`)."""
    if document is None:
        return AgentConfig()
    top = _mapping(document, "", TOP_KEYS)
    runtime = _text(top, "runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise InvalidAgentSpec(
            "runtime", f"{quoted(runtime)} is not supported (Caxton runs: {', '.join(RUNTIMES)})"
        )
    resources = _mapping(top.get("resources", {}), "resources", RESOURCE_KEYS)
    return AgentConfig(
        name=_text(top, "name"),
        version=_text(top, "version", numbers=True),
        capabilities=_texts(top, "capabilities"),
        replicas=_whole(top, "replicas"),
        memory_bytes=_unit(resources, "resources.memory", parse_size_bytes),
        timeout_ms=_unit(resources, "resources.timeout", parse_duration_ms),
        mailbox=_whole(resources, "resources.mailbox"),
        tools=_texts(top, "tools"),
        init_config=_json(top.get("config")),
    )


def _mapping(value: object, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        what = where or "the file"
        raise InvalidAgentSpec(where or "file", f"{what} must be a mapping of keys to values")
    for key in value:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise InvalidAgentSpec(path, f"unknown key (known here: {', '.join(known)})")
    return {str(k): v for k, v in value.items()}


def _leaf(document: Mapping[str, Any], path: str) -> Any:
    return document.get(path.rpartition(".")[2])


def _text(document: Mapping[str, Any], path: str, *, numbers: bool = False) -> str | None:
    """A string; with `numbers`, a number too (YAML reads `version: 1.0` as a float)."""
    value = _leaf(document, path)
    if value is None or isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidAgentSpec(path, f"must be text, not {quoted(value)}")


def _texts(document: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    value = _leaf(document, path)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAgentSpec(path, f"must be a list of names, not {quoted(value)}")
    return tuple(value)


def _whole(document: Mapping[str, Any], path: str) -> int | None:
    value = _leaf(document, path)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise InvalidAgentSpec(path, f"must be a whole number, not {quoted(value)}")


def _unit(document: Mapping[str, Any], path: str, parse: Callable[[str], int]) -> int | None:
    """A size or duration written with its unit (`128MB`, `30s`); a bare number is
    bytes or seconds, as on the command line."""
    value = _leaf(document, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidAgentSpec(path, f"must be a value with its unit, not {quoted(value)}")
    try:
        return parse(str(value))
    except ValueError as exc:
        raise InvalidAgentSpec(path, str(exc)) from None


def _json(value: object) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:  # a YAML date, NaN, ...
        raise InvalidAgentSpec("config", f"must be JSON data ({exc})") from None
