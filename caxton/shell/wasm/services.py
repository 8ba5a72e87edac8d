"""What the host offers a guest during one call: the `HostServices` the runtime implements."""

from __future__ import annotations

from typing import Protocol


class HostServices(Protocol):
    """The host side of one `init` or `handle` call, made fresh by the runtime per call.

    Methods may run on a worker thread (agents with long timeouts run there), one call
    at a time: implementations should only compute answers and append what happened
    to plain lists, which the runtime reads after the call returns. A refusal is
    raised as `SendRefused` / `ToolFailed` (the guest receives the reason as `err`);
    any other exception kills the instance as a `host-error` trap.
    """

    def send(self, envelope_json: str) -> str:
        """Validates, addresses and buffers an envelope; returns its id."""
        ...

    def log(self, level: str, text: str) -> None:
        """`level` is one of trace, debug, info, warn, error."""
        ...

    def now(self) -> int:
        """Milliseconds since the Unix epoch (journaled)."""
        ...

    def random(self) -> int:
        """64 random bits, 0 <= value < 2**64 (journaled)."""
        ...

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        """The tool's JSON result (journaled)."""
        ...
