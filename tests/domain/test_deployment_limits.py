"""A deployment's config and capabilities are bounded, and bad names are quoted short."""

from __future__ import annotations

import pytest

from caxton.domain.deployment import MAX_CAPABILITIES, MAX_CONFIG_BYTES, validate_deployment
from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import Limits


def refused(name: str = "agent", **changes: object) -> InvalidAgentSpec:
    spec: dict[str, object] = {"replicas": 1, "capabilities": (), "limits": Limits()}
    spec.update(changes)
    with pytest.raises(InvalidAgentSpec) as caught:
        validate_deployment(name, **spec)  # type: ignore[arg-type]
    return caught.value


def test_a_config_over_a_mib_is_refused() -> None:
    error = refused(config="x" * (MAX_CONFIG_BYTES + 1))
    assert (error.field, error.reason) == (
        "config",
        f"{MAX_CONFIG_BYTES + 1} bytes is over the limit of {MAX_CONFIG_BYTES}",
    )


def test_a_config_of_a_mib_is_accepted() -> None:
    validate_deployment(
        "agent", replicas=1, capabilities=(), limits=Limits(), config="x" * MAX_CONFIG_BYTES
    )


def test_too_many_capabilities_are_refused() -> None:
    error = refused(capabilities=tuple(f"c{i}" for i in range(MAX_CAPABILITIES + 1)))
    assert error.field == "capability"


def test_a_huge_name_is_quoted_short() -> None:
    error = refused("n" * (5 << 20))
    assert error.field == "name"
    assert len(str(error)) < 400
