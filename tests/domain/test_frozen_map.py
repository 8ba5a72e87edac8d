"""FrozenMap behaves like a dict that is copied on every change, without the copying."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain import FrozenMap

operations = st.lists(st.tuples(st.booleans(), st.integers(-200, 200), st.integers()), max_size=300)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_a_frozen_map_agrees_with_a_dict(ops: list[tuple[bool, int, int]]) -> None:
    model: dict[int, int] = {}
    current: FrozenMap[int, int] = FrozenMap()
    history = [(current, dict(model))]
    for is_set, key, value in ops:
        if is_set:
            current = current.set(key, value)
            model[key] = value
        else:
            current = current.delete(key)
            model.pop(key, None)
        history.append((current, dict(model)))
    for snapshot, expected in history:  # older versions never change
        assert snapshot == expected
        assert len(snapshot) == len(expected)
        assert sorted(snapshot) == sorted(expected)
        assert all((k in snapshot) for k in expected)


def test_frozen_maps_with_the_same_items_are_equal_and_hash_alike() -> None:
    a = FrozenMap({"x": 1, "y": 2})
    b = FrozenMap[str, int]().set("y", 2).set("x", 1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != FrozenMap({"x": 1})
    assert a.get("z") is None
    assert repr(FrozenMap({"x": 1})) == "FrozenMap({'x': 1})"


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.integers(), max_size=400))
def test_its_views_and_lookups_agree_with_a_dict(model: dict[str, int]) -> None:
    current: FrozenMap[str, int] = FrozenMap()
    for key, value in model.items():
        current = current.set(key, value)
    assert sorted(current.items()) == sorted(model.items())
    assert sorted(current.values()) == sorted(model.values())
    assert sorted(current.keys()) == sorted(model)
    for key, value in model.items():
        assert current[key] == value and current.get(key) == value and key in current
    assert current.get("missing!", -1) == -1 and "missing!" not in current


def test_setting_the_value_a_key_has_keeps_the_map() -> None:
    value = object()
    m = FrozenMap[str, object]({"x": value})
    assert m.set("x", value) is m
    assert m.set("x", object()) is not m
