"""The caxton:agent/host imports, defined once per engine and routed to the current call.

One `Linker` serves every instance. A guest call and the host functions it calls
run on the same thread, so the instance puts the call's `HostServices` in a
thread-local slot before entering the guest and the host functions read it there:
no lookup by store, no per-instance linker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import component

from caxton.shell.wasm import capi
from caxton.shell.wasm.errors import HostCallRefused
from caxton.shell.wasm.services import HostServices
from caxton.shell.wasm.validation import HOST_INTERFACE


class ActiveCall:
    """The services of the call running on this thread, and a host failure if any.

    `resume(waited_ns)` is called after a host function that may wait (`call-tool`), so
    the instance can re-arm the guest's deadline without charging it the wait."""

    __slots__ = ("failure", "resume", "services")

    def __init__(self, services: HostServices) -> None:
        self.services = services
        self.failure: BaseException | None = None
        self.resume: Callable[[int], None] | None = None


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
    except Exception as exc:
        call.failure = exc
        raise wasmtime.WasmtimeError(f"host function failed: {exc!r}") from None


def _answer(body: Callable[[HostServices], object]) -> capi.Reply:
    """A `result<string, string>`: the service's text, or the reason it refused."""
    call = _active()
    try:
        return True, _text(body(call.services))
    except HostCallRefused as refused:
        return False, refused.reason
    except Exception as exc:
        call.failure = exc
        raise wasmtime.WasmtimeError(f"host function failed: {exc!r}") from None


def _failed(exc: BaseException) -> None:
    """Remembers an exception raised while lowering a host function's answer."""
    call: ActiveCall | None = getattr(_slot, "call", None)
    if call is not None and call.failure is None:
        call.failure = exc


def _send(message: str) -> capi.Reply:
    """`_answer` written out for send, without a closure and two calls: it runs for every
    message an agent sends."""
    call = _active()
    try:
        return True, _text(call.services.send(message))
    except HostCallRefused as refused:
        return False, refused.reason
    except Exception as exc:
        call.failure = exc
        raise wasmtime.WasmtimeError(f"host function failed: {exc!r}") from None


def _log(level: str, text: str) -> None:
    _guarded(lambda s: s.log(level, text))


def _now() -> int:
    return int(_guarded(lambda s: _u64(s.now())))


def _random() -> int:
    return int(_guarded(lambda s: _u64(s.random())))


def _call_tool(server: str, tool: str, args_json: str) -> capi.Reply:
    call = _active()
    began = time.perf_counter_ns()
    try:
        return _answer(lambda s: s.call_tool(server, tool, args_json))
    finally:
        if call.resume is not None:
            call.resume(time.perf_counter_ns() - began)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"host service returned {type(value).__name__}, not str")
    return value


def _u64(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise ValueError(f"host service returned {value!r}, not a u64")
    return value


HOST = capi.HostFunctions(
    send=_send, log=_log, now=_now, random=_random, call_tool=_call_tool, failed=_failed
)


def make_linker(engine: wasmtime.Engine) -> component.Linker:
    """A linker with WASI p2 (componentize-py needs it) and the caxton:agent host.

    The host functions are raw C callbacks (`capi`) while the fast path is enabled,
    wasmtime-py's `add_func` otherwise; both behave the same.
    """
    linker = component.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        if capi.enabled():
            capi.add_host_functions(host, HOST)
        else:
            _add_portable(host)
    return linker


def _add_portable(host: component.LinkerInstance) -> None:
    def variant(reply: capi.Reply) -> component.Variant:
        return component.Variant("ok" if reply[0] else "err", reply[1])

    host.add_func("send", lambda _store, message: variant(_send(message)))
    host.add_func("log", lambda _store, level, text: _log(level, text))
    host.add_func("now", lambda _store: _now())
    host.add_func("random", lambda _store: _random())
    host.add_func(
        "call-tool", lambda _store, server, tool, args: variant(_call_tool(server, tool, args))
    )
