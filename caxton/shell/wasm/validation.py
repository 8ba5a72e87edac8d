"""Checks that uploaded bytes are a component of the caxton:agent world, with clear errors."""

from __future__ import annotations

import wasmtime
from wasmtime import component

from caxton.shell.wasm.errors import InvalidComponent

WASM_MAGIC = b"\x00asm"
HOST_INTERFACE = "caxton:agent/host@0.1.0"
REQUIRED_EXPORTS = ("init", "handle")
_WASI_PREFIX = "wasi:"
_CORE_MODULE_LAYER = b"\x01\x00\x00\x00"
_COMPONENT_LAYER = b"\x0d\x00\x01\x00"
_BUILD_HINT = "build it with 'caxton agent build'"


def check_header(wasm: bytes, name: str) -> None:
    """Refuses anything that is not a component binary, before compiling it."""
    if wasm[:4] != WASM_MAGIC:
        raise InvalidComponent(name, f"not a WebAssembly file (it starts with {bytes(wasm[:8])!r})")
    layer = bytes(wasm[4:8])
    if layer == _CORE_MODULE_LAYER:
        raise InvalidComponent(name, f"a core WebAssembly module, not a component ({_BUILD_HINT})")
    if layer != _COMPONENT_LAYER:
        raise InvalidComponent(
            name, f"an unsupported WebAssembly version or layer ({layer!r}); {_BUILD_HINT}"
        )


def check_world(engine: wasmtime.Engine, compiled: component.Component, name: str) -> bool:
    """Refuses a component whose exports or imports are not those of caxton:agent;
    returns whether it imports WASI (componentize-py agents do, WAT agents need not)."""
    kind = compiled.type
    exports = kind.exports(engine)
    for export in REQUIRED_EXPORTS:
        if export not in exports:
            raise InvalidComponent(
                name, f"missing export '{export}' (the caxton:agent world requires it)"
            )
        _check_signature(exports[export].ty, export, name)
    imports = kind.imports(engine)
    for imported in imports:
        if imported != HOST_INTERFACE and not imported.startswith(_WASI_PREFIX):
            raise InvalidComponent(
                name,
                f"imports '{imported}', which is outside the caxton:agent world "
                f"(only '{HOST_INTERFACE}' and WASI are provided)",
            )
    return any(imported.startswith(_WASI_PREFIX) for imported in imports)


def _check_signature(item: object, export: str, name: str) -> None:
    expected = f"'{export}' must be func(string) -> result<_, string> (the caxton:agent world)"
    if not isinstance(item, component.FuncType):
        raise InvalidComponent(name, f"export {expected}")
    params = item.params
    result = item.result
    if (
        len(params) != 1
        or not isinstance(params[0][1], component.String)
        or not isinstance(result, component.ResultType)
        or result.ok is not None
        or not isinstance(result.err, component.String)
    ):
        raise InvalidComponent(name, f"export {expected}")
