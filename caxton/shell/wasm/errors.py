"""The WebAssembly layer's exception tree; wasmtime's own errors never leave this package.

    WasmError
    ├── InvalidComponent      bytes that are not a caxton:agent component (name, reason)
    ├── UnknownComponent      a digest the cache has never stored
    ├── StorageFull           the cache cannot store a component: its disk is full
    ├── InstantiationFailed   a valid component that could not be instantiated
    ├── InstanceDead          a call on an instance that trapped before
    └── HostCallRefused       raised by HostServices; the guest receives it as `err`
        ├── SendRefused       host.send refused the envelope
        └── ToolFailed        host.call-tool failed

wasmtime's `WasmtimeError` and `Trap` are translated in two places only: component
loading (`cache.py`) and guest calls (`instance.py`, into an `Outcome`).
"""

from __future__ import annotations


class WasmError(Exception):
    """Base of every error the WebAssembly layer raises."""


class InvalidComponent(WasmError):
    """Uploaded bytes that cannot run as an agent; the message says what to do."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class UnknownComponent(WasmError):
    """A component digest that is neither in memory nor on disk."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no component with digest {digest} is stored")
        self.digest = digest


class StorageFull(WasmError):
    """The component cache's disk (or quota) has no room for an uploaded component."""


class InstantiationFailed(WasmError):
    """A component that compiled but could not be instantiated (limits, imports)."""


class InstanceDead(WasmError):
    """An instance trapped; it must be dropped and a new one instantiated."""


class HostCallRefused(WasmError):
    """A host service said no; `reason` is the text the guest receives as `err`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SendRefused(HostCallRefused):
    """host.send refused an envelope (invalid, unknown receiver, over a limit)."""


class ToolFailed(HostCallRefused):
    """host.call-tool failed (no such tool, not allowed, timed out, tool error)."""
