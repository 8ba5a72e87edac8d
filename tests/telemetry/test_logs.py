"""Logs: JSON lines with the trace fields, text on a terminal, and agents rate-limited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.tracing import process_span_id, stamped, trace_of
from caxton.shell.telemetry.logs import (
    AgentLogFilter,
    AgentLogLimiter,
    configure_logging,
    message_context,
)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


MESSAGE = stamped(
    AclMessage(
        id="m1",
        performative=Performative.REQUEST,
        sender="client:c",
        receivers=("echo",),
        conversation_id="conv-9",
    )
)


def test_a_log_line_is_json_with_the_trace_of_the_handling(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "auto", stream)

    logging.getLogger("caxton.agent").info("hello", extra=message_context(MESSAGE, "echo"))

    line = json.loads(stream.getvalue())
    assert line["event"] == "hello" and line["level"] == "info"
    assert line["agent"] == "echo" and line["conversation_id"] == "conv-9"
    assert line["trace_id"] == trace_of(MESSAGE).trace_id
    assert line["span_id"] == process_span_id("m1", "echo")  # the exported process span
    assert line["timestamp"].endswith("+00:00")


def test_on_a_terminal_the_same_line_is_text(restore_logging: None) -> None:
    stream = FakeTTY()
    configure_logging("INFO", "auto", stream)

    logging.getLogger("caxton.runtime").warning("slow#0 trapped", extra={"agent": "slow"})

    text = stream.getvalue()
    assert "WARNI caxton.runtime" in text and "slow#0 trapped" in text and "agent=slow" in text
    assert not text.startswith("{")


def test_a_chatty_agent_is_cut_to_its_rate_and_told_how_much_was_dropped() -> None:
    now = [0.0]
    dropped: list[str] = []
    limiter = AgentLogLimiter(rate=10, burst=5, clock=lambda: now[0], on_drop=dropped.append)
    kept = io.StringIO()
    logger = logging.getLogger("caxton.test-agent-logs")
    logger.propagate = False
    handler = logging.StreamHandler(kept)
    logger.addHandler(handler)
    logger.addFilter(AgentLogFilter(limiter))
    try:
        for i in range(50):
            logger.warning("line %d", i, extra={"agent": "chatty"})
        logger.warning("quiet one", extra={"agent": "quiet"})
        now[0] = 1.0  # a second later: ten more lines allowed
        logger.warning("back", extra={"agent": "chatty"})
    finally:
        logger.removeHandler(handler)

    lines = kept.getvalue().splitlines()
    assert lines[:5] == [f"line {i}" for i in range(5)]
    assert lines[5] == "quiet one"
    assert lines[6] == "(45 earlier lines dropped by the rate limit) back"
    assert dropped == ["chatty"] * 45
