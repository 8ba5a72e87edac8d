"""The fast `replace` behaves like `dataclasses.replace` for the state classes."""

from __future__ import annotations

import dataclasses

import pytest

from caxton.domain.agents import InstanceState
from caxton.domain.frozen import replace


def test_replace_changes_the_named_fields_and_keeps_the_rest() -> None:
    state = InstanceState(replica=2, lifecycle="running", incarnation=3)

    changed = replace(state, lifecycle="trapped", traps=1)

    assert changed == dataclasses.replace(state, lifecycle="trapped", traps=1)
    assert state.lifecycle == "running"


def test_replace_refuses_a_field_that_does_not_exist() -> None:
    with pytest.raises(TypeError, match="no field 'lifecycel'"):
        replace(InstanceState(replica=0), lifecycel="running")
