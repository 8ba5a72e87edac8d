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
    if HOST_INTERFACE in imports:
        _check_host_imports(engine, imports[HOST_INTERFACE].ty, name)
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


# The host functions as proto/wit/agent.wit declares them, in `_shape`'s words.
HOST_FUNCTIONS = {
    "send": "func(string) -> result<string, string>",
    "log": "func(enum{trace, debug, info, warn, error}, string)",
    "now": "func() -> u64",
    "random": "func() -> u64",
    "call-tool": "func(string, string, string) -> result<string, string>",
}


def _check_host_imports(engine: wasmtime.Engine, host: object, name: str) -> None:
    """Refuses a host function imported under a name or a type the world does not have
    (it would trap at its first call instead of being refused now)."""
    if not isinstance(host, component.ComponentInstanceType):
        raise InvalidComponent(
            name, f"imports '{HOST_INTERFACE}' as something else than an instance"
        )
    for function, item in host.exports(engine).items():
        item_type = getattr(item, "ty", item)
        if not isinstance(item_type, component.FuncType):
            continue  # a type export, such as `level`
        expected = HOST_FUNCTIONS.get(function)
        if expected is None:
            raise InvalidComponent(
                name, f"imports '{function}' from '{HOST_INTERFACE}', which has no such function"
            )
        found = _shape(item_type)
        if found != expected:
            raise InvalidComponent(
                name,
                f"imports '{function}' as {found}, but the caxton:agent world declares {expected}",
            )


def _shape(kind: object) -> str:
    """A component type written as WIT would write it (enough to compare signatures)."""
    if isinstance(kind, component.FuncType):
        params = ", ".join(_shape(t) for _, t in kind.params)
        result = "" if kind.result is None else f" -> {_shape(kind.result)}"
        return f"func({params}){result}"
    if isinstance(kind, component.ResultType):
        ok = "_" if kind.ok is None else _shape(kind.ok)
        err = "_" if kind.err is None else _shape(kind.err)
        return f"result<{ok}, {err}>"
    if isinstance(kind, component.EnumType):
        return "enum{" + ", ".join(kind.names) + "}"
    return type(kind).__name__.lower()


_PAGE = 1 << 16
_CORE_MODULE_SECTION, _COMPONENT_SECTION, _MEMORY_SECTION = 1, 4, 5


def check_memory(needed: int, limit: int, name: str) -> None:
    """Refuses a component whose largest memory's declared minimum size (`needed`, from
    `initial_memory`) is over the agent's memory limit (a limit per linear memory):
    every instance of it would fail to start."""
    if needed > limit:
        raise InvalidComponent(
            name,
            f"declares a memory of {needed / (1 << 20):,.1f} MiB at start, more than its memory "
            f"limit of {limit / (1 << 20):,.1f} MiB (raise it with --memory)",
        )


def initial_memory(wasm: bytes) -> int:
    """`largest_initial_memory`, or 0 for what this parser cannot read (compiling it has
    already said whether it is valid)."""
    try:
        return largest_initial_memory(wasm)
    except (IndexError, ValueError):
        return 0


def largest_initial_memory(wasm: bytes) -> int:
    """The minimum size in bytes of the largest memory a component's core modules define."""
    return _memories_of_component(memoryview(wasm))


def _memories_of_component(view: memoryview) -> int:
    largest = 0
    for section, body in _sections(view):
        if section == _CORE_MODULE_SECTION:
            largest = max(largest, _memories_of_module(body))
        elif section == _COMPONENT_SECTION:
            largest = max(largest, _memories_of_component(body))
    return largest


def _memories_of_module(view: memoryview) -> int:
    largest = 0
    for section, body in _sections(view):
        if section != _MEMORY_SECTION:
            continue
        count, at = _leb(body, 0)
        for _ in range(count):
            flags = body[at]
            minimum, at = _leb(body, at + 1)
            if flags & 1:  # a maximum follows
                _, at = _leb(body, at)
            largest = max(largest, minimum * _PAGE)
    return largest


def _sections(view: memoryview) -> list[tuple[int, memoryview]]:
    """The (id, body) of each section after the 8-byte preamble."""
    found, at = [], 8
    while at < len(view):
        section = view[at]
        size, at = _leb(view, at + 1)
        if at + size > len(view):
            raise ValueError("a section runs past the end")
        found.append((section, view[at : at + size]))
        at += size
    return found


def _leb(view: memoryview, at: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `at`, and the offset after it."""
    value = shift = 0
    while True:
        byte = view[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
