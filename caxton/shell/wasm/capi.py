"""The hot path: guest exports and host imports of caxton:agent through wasmtime's C API.

wasmtime-py's component layer looks up a function's type over FFI and converts every
value through generic Python code on each call and each host callback; for the six
signatures of the caxton:agent world that is most of a call's cost. This module calls
`wasmtime_component_func_call` and registers raw host callbacks itself, for exactly
those signatures, and nothing else.

It relies on private parts of wasmtime-py 50 (`wasmtime._ffi`, the C layout of
`wasmtime_component_val_t`), so it is used only while `enabled()`: the `ENABLED`
switch is on and the layout checks below pass. Otherwise the host uses wasmtime-py's
public API (`imports.make_linker`, `instance.AgentInstance`), with the same behaviour.

Ownership (wasmtime's C API, crates/c-api/src/component):
- `func_call` only reads its arguments, so a string argument borrows the bytes of
  a Python `bytes` object for the duration of the call. Its result belongs to the
  caller and is freed with `wasmtime_component_val_delete`.
- A host callback's arguments belong to wasmtime (dropped after the callback). Its
  results are dropped by wasmtime too, so they are built in wasmtime's allocator:
  `wasm_byte_vec_new` for a string, `wasmtime_component_val_new` for the boxed
  payload of a `result`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import c_bool, c_char_p, c_size_t, c_uint8, c_uint64, c_void_p
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component
from wasmtime.component import _enter

ENABLED = True
"""Set to False (before making a `WasmHost`) to use wasmtime-py's public API instead."""

Reply = tuple[bool, str]
"""A `result<string, string>` on the Python side: (ok, text)."""

_BOOL = 0
_U64 = 8
_STRING = 12
_ENUM = 17
_RESULT = 19
_VAL_SIZE = 32


class _StringArg(ctypes.Structure):
    """A `wasmtime_component_val_t` of kind string whose bytes are Python's."""

    _fields_ = [
        ("kind", c_uint8),
        ("size", c_size_t),
        ("data", c_char_p),
        ("_end", c_size_t),
    ]


class _StringView(ctypes.Structure):
    """A `wasmtime_component_val_t` read as a string (or an enum case, same layout).

    `data` is a `char *`, so `data[:size]` copies the bytes out without a foreign call:
    `ctypes.string_at` is one, and reading an agent's envelope cost three times as much."""

    _fields_ = [
        ("kind", c_uint8),
        ("size", c_size_t),
        ("data", ctypes.POINTER(ctypes.c_char)),
        ("_end", c_size_t),
    ]


class _ResultView(ctypes.Structure):
    """A `wasmtime_component_val_t` read or written as a `result`."""

    _fields_ = [
        ("kind", c_uint8),
        ("_pad", c_uint8 * 7),
        ("is_ok", c_bool),
        ("payload", c_void_p),
        ("_end", c_size_t),
    ]


class _U64View(ctypes.Structure):
    """A `wasmtime_component_val_t` written as a u64."""

    _fields_ = [
        ("kind", c_uint8),
        ("value", c_uint64),
        ("_end", c_size_t * 2),
    ]


def _result_field_offset(name: str) -> int:
    union: int = ffi.wasmtime_component_val_t.of.offset
    field: int = getattr(ffi.wasmtime_component_valresult_t, name).offset
    return union + field


def _layout_matches() -> bool:
    """Whether the installed wasmtime-py lays values out the way this module writes them."""
    val = ffi.wasmtime_component_val_t
    vec: Any = ffi.wasm_byte_vec_t  # its annotations describe instances, not fields
    string_at = val.of.offset + vec.size.offset, val.of.offset + vec.data.offset
    kinds = (
        ffi.WASMTIME_COMPONENT_BOOL.value,
        ffi.WASMTIME_COMPONENT_U64.value,
        ffi.WASMTIME_COMPONENT_STRING.value,
        ffi.WASMTIME_COMPONENT_ENUM.value,
        ffi.WASMTIME_COMPONENT_RESULT.value,
    )
    return (
        kinds == (_BOOL, _U64, _STRING, _ENUM, _RESULT)
        and ctypes.sizeof(val) == _VAL_SIZE
        and all(ctypes.sizeof(view) == _VAL_SIZE for view in _VIEWS)
        and (_StringArg.size.offset, _StringArg.data.offset) == string_at
        and (_StringView.size.offset, _StringView.data.offset) == string_at
        and _ResultView.is_ok.offset == _result_field_offset("is_ok")
        and _ResultView.payload.offset == _result_field_offset("val")
        and _U64View.value.offset == val.of.offset
        and val.kind.size == 1
    )


_VIEWS = (_StringArg, _StringView, _ResultView, _U64View)


def _c_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """A private ctypes binding (wasmtime-py's own keep their argtypes); releases the GIL."""
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, ffi.dll))


_Callback = ctypes.CFUNCTYPE(
    c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t
)

try:
    _func_call = _c_function(
        "wasmtime_component_func_call", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t,
        c_void_p, c_size_t,
    )  # fmt: skip
    _post_return = _c_function("wasmtime_component_func_post_return", c_void_p, c_void_p, c_void_p)
    _val_delete = _c_function("wasmtime_component_val_delete", None, c_void_p)
    _val_new = _c_function("wasmtime_component_val_new", c_void_p, c_void_p)
    _byte_vec_new = _c_function("wasm_byte_vec_new", None, c_void_p, c_size_t, c_char_p)
    _add_func = _c_function(
        "wasmtime_component_linker_instance_add_func", c_void_p, c_void_p, c_char_p, c_size_t,
        c_void_p, c_void_p, c_void_p,
    )  # fmt: skip
    AVAILABLE = _layout_matches()
    """False when this wasmtime-py lays values out differently: the public API is used."""
except AttributeError:  # a wasmtime-py without one of these symbols or fields
    AVAILABLE = False


def enabled() -> bool:
    return ENABLED and AVAILABLE


def _raise(error: int | None) -> None:
    """Raises a `WasmtimeError` the way wasmtime-py's `enter_wasm` does."""
    if error:
        pointer = ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
        exc = wasmtime.WasmtimeError._from_ptr(pointer)
        _enter.maybe_raise_last_exn()
        raise exc


# --- guest exports --------------------------------------------------------


class GuestExport:
    """A `func(string) -> result<_, string>` export: returns None (ok) or the error text.

    Calls go to the Store the export was taken from; the caller keeps that Store
    alive and never calls after dropping it. Raises `WasmtimeError` for traps.
    """

    __slots__ = ("_arg", "_arg_at", "_context", "_func", "_func_at", "_result", "_result_at")

    def __init__(self, store: wasmtime.Store, func: component.Func) -> None:
        self._func = func  # owns the wasmtime_component_func_t the C API reads
        self._func_at = ctypes.addressof(func._func)
        self._context = ctypes.cast(store._context(), c_void_p).value
        self._arg = _StringArg(kind=_STRING)
        self._arg_at = ctypes.addressof(self._arg)
        self._result = _ResultView(kind=_BOOL)
        self._result_at = ctypes.addressof(self._result)

    def __call__(self, store: wasmtime.Store, text: str | bytes) -> str | None:
        arg = self._arg
        data = text if type(text) is bytes else text.encode()  # type: ignore[union-attr]
        arg.size = len(data)
        arg.data = data
        try:
            error = _func_call(self._func_at, self._context, self._arg_at, 1, self._result_at, 1)
        finally:
            arg.data = None
        _raise(error)
        outcome = self._take_result()
        _raise(_post_return(self._func_at, self._context))
        return outcome

    def _take_result(self) -> str | None:
        result = self._result
        kind, is_ok, payload = result.kind, result.is_ok, result.payload
        if kind == _RESULT and is_ok and not payload:
            result.kind = _BOOL
            return None
        try:
            if kind == _RESULT and not is_ok and payload:
                return _read_string(payload)
            raise wasmtime.WasmtimeError(f"export returned a value of kind {kind}, not result")
        finally:
            _val_delete(self._result_at)
            result.kind = _BOOL  # the slot is overwritten (and dropped) by the next call


class PortableExport:
    """The same call through wasmtime-py's public API (`Func.__call__`)."""

    __slots__ = ("_func",)

    def __init__(self, func: component.Func) -> None:
        self._func = func

    def __call__(self, store: wasmtime.Store, text: str | bytes) -> str | None:
        if isinstance(text, bytes):
            text = text.decode()
        result = self._func(store, text)
        self._func.post_return(store)
        return None if result is None else str(result)


def guest_export(store: wasmtime.Store, func: component.Func) -> GuestExport | PortableExport:
    return GuestExport(store, func) if enabled() else PortableExport(func)


def _read_string(at: int) -> str:
    view = _StringView.from_address(at)
    if view.kind != _STRING:
        raise wasmtime.WasmtimeError(f"expected a string value, found kind {view.kind}")
    size = view.size
    if not size:
        return ""
    data: bytes = view.data[:size]
    return data.decode()


def _read_enum(at: int) -> str:
    view = _StringView.from_address(at)
    if view.kind != _ENUM:
        raise wasmtime.WasmtimeError(f"expected an enum value, found kind {view.kind}")
    data: bytes = view.data[: view.size]
    return data.decode()


# --- host imports ---------------------------------------------------------

Failed = Callable[[BaseException], None]


class HostFunctions:
    """The caxton:agent/host functions on the Python side, lifted and lowered here.

    A function raises `WasmtimeError` to trap the guest; any other exception (here or
    in lowering its answer) is passed to `failed` first, then traps the guest too.
    """

    def __init__(
        self,
        *,
        send: Callable[[str], Reply],
        log: Callable[[str, str], None],
        now: Callable[[], int],
        random: Callable[[], int],
        call_tool: Callable[[str, str, str], Reply],
        failed: Failed,
    ) -> None:
        self.send = send
        self.log = log
        self.now = now
        self.random = random
        self.call_tool = call_tool
        self.failed = failed


def add_host_functions(instance: component.LinkerInstance, host: HostFunctions) -> None:
    """Defines send, log, now, random and call-tool in a linker instance, as raw callbacks."""
    callbacks = _KEEP_ALIVE.setdefault(id(host), (host, _callbacks(host)))[1]
    for name, callback in callbacks.items():
        encoded = name.encode()
        error = _add_func(
            ctypes.cast(instance.ptr(), c_void_p), encoded, len(encoded), callback, None, None
        )
        _raise(error)


_KEEP_ALIVE: dict[int, tuple[HostFunctions, dict[str, Any]]] = {}
"""Callbacks live as long as the process: linkers (and their copies) may call them."""


def _callbacks(host: HostFunctions) -> dict[str, Any]:
    failed = host.failed

    def trap(exc: BaseException) -> int:
        if not isinstance(exc, wasmtime.WasmtimeError):
            failed(exc)
            exc = wasmtime.WasmtimeError(f"host function failed: {exc!r}")
        pointer = exc._consume()
        return ctypes.cast(pointer, c_void_p).value or 0

    def expect(nargs: int, wanted: int, nresults: int) -> None:
        if nargs != wanted or nresults != 1:
            raise wasmtime.WasmtimeError("host function called with an unexpected signature")

    host_send = host.send

    def send(_d: int, _c: int, _t: int, args: int, nargs: int, out: int, nout: int) -> int:
        try:  # `expect` written out: this runs for every message an agent sends
            if nargs != 1 or nout != 1:
                raise wasmtime.WasmtimeError("host function called with an unexpected signature")
            _write_reply(out, host_send(_read_string(args)))
        except BaseException as exc:
            return trap(exc)
        return 0

    def call_tool(_d: int, _c: int, _t: int, args: int, nargs: int, out: int, nout: int) -> int:
        try:
            expect(nargs, 3, nout)
            server = _read_string(args)
            tool = _read_string(args + _VAL_SIZE)
            args_json = _read_string(args + 2 * _VAL_SIZE)
            _write_reply(out, host.call_tool(server, tool, args_json))
        except BaseException as exc:
            return trap(exc)
        return 0

    def log(_d: int, _c: int, _t: int, args: int, nargs: int, _out: int, nout: int) -> int:
        try:
            if nargs != 2 or nout != 0:
                raise wasmtime.WasmtimeError("host function called with an unexpected signature")
            host.log(_read_enum(args), _read_string(args + _VAL_SIZE))
        except BaseException as exc:
            return trap(exc)
        return 0

    def u64(answer: Callable[[], int]) -> Callable[..., int]:
        def callback(_d: int, _c: int, _t: int, _a: int, nargs: int, out: int, nout: int) -> int:
            try:
                expect(nargs, 0, nout)
                value = answer()
                slot = _U64View.from_address(out)
                slot.value = value
                slot.kind = _U64
            except BaseException as exc:
                return trap(exc)
            return 0

        return callback

    return {
        "send": _Callback(send),
        "log": _Callback(log),
        "now": _Callback(u64(host.now)),
        "random": _Callback(u64(host.random)),
        "call-tool": _Callback(call_tool),
    }


def _write_reply(out: int, reply: Reply) -> None:
    """Lowers (ok, text) into the result slot wasmtime handed the callback."""
    ok, text = reply
    data = text.encode()
    # The slot holds Bool(false); it is first used to build the payload, which
    # `val_new` moves into a box (leaving Bool(false) behind), then becomes the result.
    _byte_vec_new(out + _StringView.size.offset, len(data), data)
    slot = _ResultView.from_address(out)  # `kind` is where every view has it
    slot.kind = _STRING
    payload = _val_new(out)
    slot.is_ok = ok
    slot.payload = payload
    slot.kind = _RESULT
