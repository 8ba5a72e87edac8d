"""The caxton:agent/host imports, defined once per engine and routed to the current call.

One `Linker` serves every instance. A guest call and the host functions it calls
run on the same thread, so the instance puts the call's `HostServices` in a
thread-local slot before entering the guest and the host functions read it there:
no lookup by store, no per-instance linker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import component

from caxton.shell.wasm.errors import HostCallRefused
from caxton.shell.wasm.services import HostServices
from caxton.shell.wasm.validation import HOST_INTERFACE


class ActiveCall:
    """The services of the call running on this thread, and a host failure if any."""

    __slots__ = ("failure", "services")

    def __init__(self, services: HostServices) -> None:
        self.services = services
        self.failure: BaseException | None = None


_slot = threading.local()


def enter(call: ActiveCall) -> None:
    _slot.call = call


def leave() -> None:
    _slot.call = None


def _active() -> ActiveCall:
    call: ActiveCall | None = getattr(_slot, "call", None)
    if call is None:
        raise wasmtime.WasmtimeError("host function called outside a guest call")
    return call


def _guarded(body: Callable[[HostServices], Any]) -> Any:
    """Runs one host function; an unexpected exception becomes a trap, remembered."""
    call = _active()
    try:
        return body(call.services)
    except HostCallRefused as refused:
        return component.Variant("err", refused.reason)
    except Exception as exc:
        call.failure = exc
        raise wasmtime.WasmtimeError(f"host function failed: {exc!r}") from None


def _send(_store: object, message: str) -> Any:
    return _guarded(lambda s: component.Variant("ok", _text(s.send(message))))


def _log(_store: object, level: str, text: str) -> None:
    _guarded(lambda s: s.log(level, text))


def _now(_store: object) -> int:
    return int(_guarded(lambda s: _u64(s.now())))


def _random(_store: object) -> int:
    return int(_guarded(lambda s: _u64(s.random())))


def _call_tool(_store: object, server: str, tool: str, args_json: str) -> Any:
    return _guarded(lambda s: component.Variant("ok", _text(s.call_tool(server, tool, args_json))))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"host service returned {type(value).__name__}, not str")
    return value


def _u64(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise ValueError(f"host service returned {value!r}, not a u64")
    return value


def make_linker(engine: wasmtime.Engine) -> component.Linker:
    """A linker with WASI p2 (componentize-py needs it) and the caxton:agent host."""
    linker = component.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        host.add_func("send", _send)
        host.add_func("log", _log)
        host.add_func("now", _now)
        host.add_func("random", _random)
        host.add_func("call-tool", _call_tool)
    return linker
