"""The fast `replace` behaves like `dataclasses.replace` for the state classes."""

from __future__ import annotations

import dataclasses

import pytest

from caxton.domain.agents import AgentState, InstanceState
from caxton.domain.events import Limits
from caxton.domain.frozen import builder, copier, positional, replace


def test_replace_changes_the_named_fields_and_keeps_the_rest() -> None:
    state = InstanceState(replica=2, lifecycle="running", incarnation=3)

    changed = replace(state, lifecycle="trapped", traps=1)

    assert changed == dataclasses.replace(state, lifecycle="trapped", traps=1)
    assert state.lifecycle == "running"


def test_replace_refuses_a_field_that_does_not_exist() -> None:
    with pytest.raises(TypeError, match="no field 'lifecycel'"):
        replace(InstanceState(replica=0), lifecycel="running")


def test_replace_gives_the_same_copy_whatever_the_order_of_the_changes() -> None:
    state = InstanceState(replica=1, restarts=(5,))

    a = replace(state, traps=2, lifecycle="trapped")
    b = replace(state, lifecycle="trapped", traps=2)

    assert a == b == dataclasses.replace(state, lifecycle="trapped", traps=2)
    assert type(a) is InstanceState and a.restarts is state.restarts
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.traps = 3  # type: ignore[misc]


def test_replace_refuses_a_class_with_post_init() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            assert self.n >= 0

    with pytest.raises(TypeError, match="__post_init__"):
        replace(Checked(1), n=2)


def test_a_builder_makes_what_the_constructor_makes() -> None:
    build = builder(AgentState, {"capabilities": tuple})

    made = build({"name": "a", "component": "c", "capabilities": ["x"], "unknown": 1})

    assert made == AgentState(name="a", component="c", capabilities=("x",))
    assert made.limits == Limits() and made.instances == ()
    with pytest.raises(KeyError, match="component"):
        build({"name": "a"})


def test_positional_takes_every_field_in_order() -> None:
    make = positional(InstanceState)

    made = make(3, "running", 2, (1,), 0, "", "", 7, 11, 13, 1, None)

    assert made == InstanceState(
        replica=3,
        lifecycle="running",
        incarnation=2,
        restarts=(1,),
        handled=7,
        memory_from=11,
        snapshot_at=13,
        quarantined=1,
    )


def test_replace_copies_the_fields_a_slotted_dataclass_inherits() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Base:
        a: int
        b: str = "b"

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Derived(Base):
        c: int = 0

    changed = replace(Derived(a=1, c=2), b="x")

    assert changed == Derived(a=1, b="x", c=2)


def test_replace_refuses_a_dataclass_without_slots() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        n: int = 0

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        replace(Plain(), n=1)


def test_a_copier_makes_what_replace_makes_with_the_fields_it_names() -> None:
    state = InstanceState(replica=1, lifecycle="running", restarts=(5,))
    trapped = copier(InstanceState, "lifecycle", "traps")

    made = trapped(state, "trapped", 2)

    assert made == dataclasses.replace(state, lifecycle="trapped", traps=2)
    assert type(made) is InstanceState and made.restarts is state.restarts
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.traps = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="bad fields"):
        copier(InstanceState, "lifecycel")
