"""The agent toolchain without building: the WIT copy, source checks, templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from caxton.shell.agents import (
    TEMPLATES,
    InvalidAgentSource,
    TemplateError,
    find_agent_class,
    new_agent,
)
from caxton.shell.agents.build import WIT_DIR, componentize_command

ROOT = Path(__file__).parents[2]


def test_the_shipped_wit_is_identical_to_the_contract_in_proto() -> None:
    assert (WIT_DIR / "agent.wit").read_bytes() == (ROOT / "proto/wit/agent.wit").read_bytes()


def test_componentize_py_is_found() -> None:
    assert componentize_command()


def source(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(text)
    return path


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidAgentSource) as caught:
        find_agent_class(source(tmp_path, "from caxton_agent import Agent\nclass A(Agent)\n"))
    assert str(caught.value) == "agent.py: syntax error on line 2: expected ':'"


def test_a_file_without_an_agent_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidAgentSource, match="no agent class: define one class"):
        find_agent_class(source(tmp_path, "class Helper:\n    pass\n"))


def test_a_file_with_two_agent_classes_is_refused(tmp_path: Path) -> None:
    text = (
        "import caxton_agent\nclass A(caxton_agent.Agent): ...\nclass B(caxton_agent.Agent): ...\n"
    )
    with pytest.raises(InvalidAgentSource, match=r"2 agent classes \(A, B\)"):
        find_agent_class(source(tmp_path, text))


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_makes_one_agent_class_named_after_the_agent(
    tmp_path: Path, template: str
) -> None:
    path = new_agent("order-desk", template, tmp_path)
    assert path == tmp_path / "order_desk.py"
    assert find_agent_class(path) == "OrderDesk"
    compile(path.read_text(), str(path), "exec")


def test_an_unknown_template_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="choose one of contract-net-bidder"):
        new_agent("x", "chatbot", tmp_path)


def test_new_agent_never_overwrites(tmp_path: Path) -> None:
    new_agent("desk", "request-handler", tmp_path)
    with pytest.raises(TemplateError, match="already exists"):
        new_agent("desk", "request-handler", tmp_path)


@pytest.mark.parametrize(
    "example",
    ["contract-net/manager.py", "contract-net/bidder.py", "order-processing/order_processor.py"],
)
def test_every_example_defines_one_agent(example: str) -> None:
    assert find_agent_class(ROOT / "examples" / example)
