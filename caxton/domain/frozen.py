"""Fast copies and constructions of the frozen, slotted dataclasses of events and state.

`dataclasses.replace` inspects the fields and runs `__init__` on every call, about
10 µs here, and a frozen `__init__` pays `object.__setattr__` per field (about 0.2 µs
each). A fold replaces a few values per event and decoding builds a few objects per
event, so that was most of their cost. Both are done here by small functions generated
once per class (and, for `replace`, per set of changed fields) that store each slot
through its member descriptor (about 0.07 µs a field): a 14-field `replace` costs about
1 µs instead of 4 µs. They run no `__init__` and no `__post_init__`: classes given to
them must not define one, nor default factories whose result differs per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")

_Copier = Callable[[Any, Mapping[str, Any]], Any]
_COPIERS: dict[tuple[type, tuple[str, ...]], _Copier] = {}


def slot_names(cls: type) -> tuple[str, ...]:
    """The fields of a frozen, slotted dataclass, in order; refuses any other class."""
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__; use dataclasses.replace")
    names = tuple(f.name for f in fields(cls))
    slots = {s for c in cls.__mro__ for s in getattr(c, "__slots__", ())}
    if not set(names) <= slots:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    return names


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Any:
    exec(compile(source, f"<caxton.domain.frozen {name}>", "exec"), namespace)
    return namespace[name]


def _setters(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """`_s_<field>`: the member descriptor's `__set__`, which skips the frozen `__setattr__`."""
    return {f"_s_{n}": getattr(cls, n).__set__ for n in names}


def _copier(cls: type, changed: tuple[str, ...]) -> _Copier:
    names = slot_names(cls)
    unknown = [n for n in changed if n not in names]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    body = "".join(
        f"    _s_{n}(new, changes[{n!r}])\n" if n in changed else f"    _s_{n}(new, obj.{n})\n"
        for n in names
    )
    source = f"def copy(obj, changes):\n    new = _new(cls)\n{body}    return new\n"
    namespace = {"_new": object.__new__, "cls": cls, **_setters(cls, names)}
    copier: _Copier = _compile("copy", source, namespace)
    return copier


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes` applied, like `dataclasses.replace`."""
    key = (type(obj), tuple(changes))
    copy = _COPIERS.get(key)
    if copy is None:
        copy = _COPIERS[key] = _copier(*key)
    new: T = copy(obj, changes)
    return new


def copier(cls: type[T], *changed: str) -> Callable[..., T]:
    """A function `copy(obj, v1, v2, ...)`: `replace(obj, changed[0]=v1, ...)` with the
    fields named once, here, so a fold's hot path pays neither the keyword dict nor the
    look-up of the generated copy per call."""
    names = slot_names(cls)
    unknown = [n for n in changed if n not in names]
    if unknown or len(set(changed)) != len(changed):
        raise TypeError(f"{cls.__name__}: bad fields {changed!r}")
    params = ", ".join(f"_v_{n}" for n in changed)
    body = "".join(
        f"    _s_{n}(new, _v_{n})\n" if n in changed else f"    _s_{n}(new, obj.{n})\n"
        for n in names
    )
    source = f"def copy(obj, {params}):\n    new = _new(cls)\n{body}    return new\n"
    namespace = {"_new": object.__new__, "cls": cls, **_setters(cls, names)}
    made: Callable[..., T] = _compile("copy", source, namespace)
    return made


def positional(cls: type[T]) -> Callable[..., T]:
    """A function making a `cls` from every field's value, in field order, without
    `__init__`: for hot paths that already hold each value (the log's read path)."""
    names = slot_names(cls)
    params = ", ".join(names)
    body = "".join(f"    _s_{n}(new, {n})\n" for n in names)
    source = f"def make({params}):\n    new = _new(cls)\n{body}    return new\n"
    namespace = {"_new": object.__new__, "cls": cls, **_setters(cls, names)}
    made: Callable[..., T] = _compile("make", source, namespace)
    return made


def builder(
    cls: type[T], convert: Mapping[str, Callable[[Any], Any]] | None = None
) -> Callable[[Mapping[str, Any]], T]:
    """A function making a `cls` from a dict of its fields, as `cls(**data)` would, but
    faster: a missing field takes its default (a default factory is called once, here,
    so its value must be immutable), a missing required field raises `KeyError`, keys
    that are not fields are ignored. `convert` maps fields to functions applied to
    their stored value when it is present (not to the default)."""
    convert = convert or {}
    names = slot_names(cls)
    namespace: dict[str, Any] = {"_new": object.__new__, "cls": cls, **_setters(cls, names)}
    lines = []
    for f in fields(cls):  # type: ignore[arg-type]
        n = f.name
        stored = f"data[{n!r}]"
        if n in convert:
            namespace[f"_c_{n}"] = convert[n]
            stored = f"_c_{n}({stored})"
        factory = f.default_factory
        if f.default is not MISSING or factory is not MISSING:
            namespace[f"_d_{n}"] = f.default if factory is MISSING else factory()
            if n in convert:
                value = f"({stored} if {n!r} in data else _d_{n})"
            else:
                value = f"data.get({n!r}, _d_{n})"
        else:
            value = stored
        lines.append(f"    _s_{n}(new, {value})\n")
    source = f"def build(data):\n    new = _new(cls)\n{''.join(lines)}    return new\n"
    made: Callable[[Mapping[str, Any]], T] = _compile("build", source, namespace)
    return made
