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


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([100, 3_000, 40_000]))
def test_a_large_frozen_map_agrees_with_a_dict_at_every_depth(seed: int, size: int) -> None:
    # enough keys for two and three branches over the leaves, changed again and deleted
    keys = [f"conversation-{(seed + i * 7919) % (size * 3)}" for i in range(size)]
    model: dict[str, int] = {}
    current: FrozenMap[str, int] = FrozenMap()
    for i, key in enumerate(keys):
        current = current.set(key, i)
        model[key] = i
    before, snapshot = current, dict(model)
    for key in keys[::3]:
        assert current.set(key, model[key]) is current  # the value it has: the same map
        current = current.set(key, -1)
        model[key] = -1
    for key in keys[::5]:
        current = current.delete(key)
        model.pop(key, None)
    assert current == model and len(current) == len(model)
    assert all(current[k] == v for k, v in model.items())
    assert dict(current.items()) == model and sorted(current.values()) == sorted(model.values())
    assert before == snapshot  # the older version never changed


def test_keys_alike_in_their_low_hash_bits_go_deeper_and_still_agree_with_a_dict() -> None:
    keys = [i << 10 for i in range(300)]  # the same first two levels: leaves three deep
    model: dict[int, int] = {}
    current: FrozenMap[int, int] = FrozenMap()
    for i, key in enumerate(keys):
        current = current.set(key, i)
        model[key] = i
    for key in keys[::4]:
        current = current.set(key, -1).delete(key + 1024 * 1000)
        model[key] = -1
    for key in keys[::3]:
        current = current.delete(key)
        del model[key]
    assert current == model and sorted(current) == sorted(model)


batches = st.lists(
    st.tuples(
        st.dictionaries(
            st.integers(-5_000, 5_000) | st.text(max_size=3), st.integers(), max_size=400
        ),
        st.lists(st.integers(-5_000, 5_000), max_size=20),
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(batches)
def test_updating_many_keys_at_once_agrees_with_a_dict(
    steps: list[tuple[dict[int | str, int], list[int]]],
) -> None:
    model: dict[int | str, int] = {}
    current: FrozenMap[int | str, int] = FrozenMap()
    history = [(current, dict(model))]
    for changes, deletions in steps:
        current = current.updated(changes)
        model.update(changes)
        for key in deletions:  # set and delete still work on what `updated` built
            current = current.delete(key).set(-key - 10_000, key)
            model.pop(key, None)
            model[-key - 10_000] = key
        history.append((current, dict(model)))
    for snapshot, expected in history:  # older versions never change
        assert snapshot == expected
        assert len(snapshot) == len(expected)
        assert all(snapshot[k] == v for k, v in expected.items())
