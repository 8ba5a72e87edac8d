"""Text the server relays from agents (an error, a violation) is printed as it is, never as
rich markup: `[/x]` in an agent's error crashed `caxton agent status`."""

from __future__ import annotations

import pytest

from caxton.shell.cli.agents import _print_instances
from caxton.shell.client import AgentInfo, InstanceInfo

HOSTILE = "init-error: [/x] [bold]loud[/bold] :smile:"


def test_an_agents_error_text_is_printed_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    instance = InstanceInfo(
        replica=0,
        lifecycle="failed",
        incarnation=1,
        restarts=3,
        traps=0,
        handled=0,
        last_error=HOSTILE,
    )
    info = AgentInfo(
        name="bad",
        component_digest="sha256:00",
        component_size=1,
        capabilities=(),
        replicas=1,
        status="running",
        status_line=f"✗ Failed: {HOSTILE}",
        memory_bytes=1,
        timeout_ms=1,
        mailbox=1,
        instances=(instance,),
    )
    _print_instances(info)
    assert f"last error: {HOSTILE}" in capsys.readouterr().out
