"""A fast `replace` for the frozen, slotted dataclasses that hold the folded state.

`dataclasses.replace` inspects the fields and runs `__init__` on every call, about
10 µs here; a fold replaces a few values per event, so that was most of its cost.
This copies the slots directly (about 2 µs). It runs no `__post_init__`: state
classes must not define one.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

_SLOTS: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}
_new = object.__new__
_set = object.__setattr__


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes` applied, like `dataclasses.replace`."""
    cls = type(obj)
    known = _SLOTS.get(cls)
    if known is None:
        if hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__} has __post_init__; use dataclasses.replace")
        ordered = tuple(f.name for f in fields(obj))  # type: ignore[arg-type]
        known = _SLOTS[cls] = (ordered, frozenset(ordered))
    names, valid = known
    if not valid.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field {sorted(changes.keys() - valid)[0]!r}")
    new = _new(cls)
    for name in names:
        _set(new, name, changes[name] if name in changes else getattr(obj, name))
    return new
