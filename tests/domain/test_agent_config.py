"""An agent configuration file's document, as `caxton agent deploy --config` reads it."""

from __future__ import annotations

import json

import pytest

from caxton.domain.agent_config import AgentConfig, agent_config
from caxton.domain.errors import InvalidAgentSpec

PAGE = {  # the product page's agent-config.yaml, as YAML reads it
    "name": "order-processor",
    "version": "1.0.0",
    "runtime": "wasm",
    "capabilities": ["order-processing", "inventory-checking"],
    "resources": {"memory": "128MB", "timeout": "30s"},
}


def test_the_product_pages_file_gives_name_capabilities_and_limits() -> None:
    assert agent_config(PAGE) == AgentConfig(
        name="order-processor",
        version="1.0.0",
        capabilities=("order-processing", "inventory-checking"),
        memory_bytes=128_000_000,
        timeout_ms=30_000,
    )


def test_units_are_read_as_on_the_command_line() -> None:
    config = agent_config(
        {"resources": {"memory": "1GiB", "timeout": "200ms", "mailbox": 10}, "replicas": 3}
    )
    assert (config.memory_bytes, config.timeout_ms, config.mailbox, config.replicas) == (
        1 << 30,
        200,
        10,
        3,
    )
    bare = agent_config({"resources": {"memory": 65536, "timeout": 2}})
    assert (bare.memory_bytes, bare.timeout_ms) == (65536, 2000)  # bytes, seconds


def test_an_empty_file_says_nothing() -> None:
    assert agent_config(None) == AgentConfig()


def test_config_becomes_the_json_text_init_receives() -> None:
    config = agent_config({"config": {"prefix": "TRK", "limits": [1, 2]}})
    assert json.loads(config.init_config) == {"prefix": "TRK", "limits": [1, 2]}


def test_a_numeric_version_is_kept_as_text() -> None:
    assert agent_config({"version": 1.5}).version == "1.5"


@pytest.mark.parametrize(
    ("document", "field", "says"),
    [
        (
            {"resources": {"memroy": "1MB"}},
            "resources.memroy",
            "unknown key (known here: memory, timeout, mailbox)",
        ),
        ({"replica": 3}, "replica", "unknown key (known here: name, version, runtime"),
        ({"resources": {"memory": "128XB"}}, "resources.memory", "'128XB' is not a size"),
        ({"resources": {"timeout": "soon"}}, "resources.timeout", "'soon' is not a duration"),
        ({"resources": {"timeout": True}}, "resources.timeout", "must be a value with its unit"),
        ({"resources": "128MB"}, "resources", "must be a mapping"),
        ({"runtime": "docker"}, "runtime", "'docker' is not supported (Caxton runs: wasm)"),
        ({"name": ["a"]}, "name", "must be text"),
        ({"capabilities": [1]}, "capabilities", "must be a list of names"),
        ({"replicas": "3"}, "replicas", "must be a whole number"),
        ({"config": {"at": float("nan")}}, "config", "must be JSON data"),
        (["name", "x"], "file", "the file must be a mapping"),
    ],
)
def test_a_bad_file_names_the_key_and_what_is_wrong(
    document: object, field: str, says: str
) -> None:
    with pytest.raises(InvalidAgentSpec) as raised:
        agent_config(document)
    assert raised.value.field == field
    assert says in str(raised.value)
