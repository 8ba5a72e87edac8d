"""`[tools.NAME]` tables of caxton.toml: one MCP server each, stdio (`command`) or HTTP (`url`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from caxton.domain.tools import (
    DEFAULT_BREAKER_RESET_MS,
    DEFAULT_BREAKER_THRESHOLD,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_TIMEOUT_MS,
    MIN_RESULT_BYTES,
    is_valid_server_name,
)
from caxton.domain.units import parse_duration_ms, parse_size_bytes


class InvalidToolConfig(ValueError):
    """A `[tools.NAME]` table that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolServerConfig:
    """One MCP server: a command to run (stdio) or a streamable-HTTP `url`, and its bounds."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_reset_ms: int = DEFAULT_BREAKER_RESET_MS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def where(self) -> str:
        """For people: the command line or the URL."""
        return self.url or " ".join([self.command, *self.args])


KEYS = (
    "command",
    "args",
    "env",
    "url",
    "timeout",
    "max_concurrency",
    "breaker_threshold",
    "breaker_reset",
    "max_result_bytes",
)


def parse_tool_servers(tables: object, origin: str) -> tuple[ToolServerConfig, ...]:
    """The `[tools]` table of a configuration file; raises `InvalidToolConfig`."""
    if not isinstance(tables, dict):
        raise InvalidToolConfig(f"{origin}: [tools] must hold one table per server ([tools.db])")
    return tuple(
        _server(name, table, origin) for name, table in sorted(tables.items(), key=lambda i: i[0])
    )


def _server(name: str, table: object, origin: str) -> ToolServerConfig:
    where = f"{origin}: tools.{name}"
    if not is_valid_server_name(name):
        raise InvalidToolConfig(
            f"{where}: server names use letters, digits, '_' and '-' (at most 64, no '.')"
        )
    if not isinstance(table, dict):
        raise InvalidToolConfig(f"{where} must be a table ([tools.{name}])")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise InvalidToolConfig(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    command = _text(table, "command", where)
    url = _text(table, "url", where)
    if bool(command) == bool(url):
        raise InvalidToolConfig(
            f'{where}: needs exactly one of command = "..." (stdio) or url = "http://..."'
        )
    if url and not url.startswith(("http://", "https://")):
        raise InvalidToolConfig(f"{where}: url must start with http:// or https://")
    if url and ("args" in table or "env" in table):
        raise InvalidToolConfig(f"{where}: args and env go with command, not url")
    return ToolServerConfig(
        name=name,
        command=command,
        args=_strings(table, "args", where),
        env=_env(table, where),
        url=url,
        timeout_ms=_duration(table, "timeout", DEFAULT_TIMEOUT_MS, where),
        max_concurrency=_count(table, "max_concurrency", DEFAULT_MAX_CONCURRENCY, where),
        breaker_threshold=_count(table, "breaker_threshold", DEFAULT_BREAKER_THRESHOLD, where),
        breaker_reset_ms=_duration(table, "breaker_reset", DEFAULT_BREAKER_RESET_MS, where),
        max_result_bytes=_size(table, where),
    )


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise InvalidToolConfig(f"{where}: {key} must be a string")
    return value


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToolConfig(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _env(table: dict[str, Any], where: str) -> dict[str, str]:
    value = table.get("env", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidToolConfig(f'{where}: env must be a table of strings (env = {{ K = "v" }})')
    return dict(value)


def _duration(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidToolConfig(f'{where}: {key} must be a duration ("5s", "200ms") or seconds')
    try:
        ms = parse_duration_ms(value) if isinstance(value, str) else round(value * 1000)
    except ValueError as exc:
        raise InvalidToolConfig(f"{where}: {key}: {exc}") from None
    if not 1 <= ms <= 3_600_000:
        raise InvalidToolConfig(f"{where}: {key} must be between 1ms and 1h")
    return ms


def _count(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise InvalidToolConfig(f"{where}: {key} must be a whole number from 1 to 10000")
    return value


def _size(table: dict[str, Any], where: str) -> int:
    value = table.get("max_result_bytes", DEFAULT_MAX_RESULT_BYTES)
    try:
        size = parse_size_bytes(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise InvalidToolConfig(f"{where}: max_result_bytes: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or not size >= MIN_RESULT_BYTES:
        raise InvalidToolConfig(
            f'{where}: max_result_bytes must be a size of at least 1KiB ("1MiB" or a number)'
        )
    return size
