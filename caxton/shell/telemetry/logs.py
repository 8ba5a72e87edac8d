"""The server's logs: JSON lines on stderr (readable text on a terminal), and a per-agent
rate limit on what agents log through the `log` host call.

Every line has timestamp, level, event, and when known trace_id, span_id,
conversation_id and agent (passed as `extra=` or taken from `log_context`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from caxton.domain.acl import AclMessage
from caxton.domain.tracing import process_span_id, trace_of

LogFormat = Literal["auto", "json", "text"]
CONTEXT_FIELDS = ("trace_id", "span_id", "conversation_id", "agent")

AGENT_LINES_PER_SECOND = 20.0
AGENT_BURST = 100


def message_context(message: AclMessage | None, agent: str) -> dict[str, str]:
    """The log fields of `agent` handling `message`: its ids match the exported spans."""
    if message is None:
        return {"agent": agent}
    return {
        "agent": agent,
        "conversation_id": message.conversation_id,
        "trace_id": trace_of(message).trace_id,
        "span_id": process_span_id(message.id, agent),
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": _iso(record.created),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, "")
            if value:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`05:21:03.123 WARN  caxton.runtime  slow#0 trapped …  agent=slow trace_id=…`."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        clock = moment.strftime("%H:%M:%S.") + f"{int(record.msecs):03d}"
        text = f"{clock} {record.levelname[:5]:<5} {record.name:<15} {record.getMessage()}"
        context = [f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS if getattr(record, n, "")]
        if context:
            text += "  " + " ".join(context)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(
    level: str = "INFO", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Logs to stderr: JSON lines, or text when `auto` and stderr is a terminal."""
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


class AgentLogLimiter:
    """A token bucket per agent for the `log` host call, safe from worker threads.

    A chatty agent cannot flood the server's logs: past the burst, lines beyond the
    rate are dropped, counted, and reported in one line once the agent is allowed again.
    """

    def __init__(
        self,
        rate: float = AGENT_LINES_PER_SECOND,
        burst: int = AGENT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float, int]] = {}  # tokens, last, dropped

    def allow(self, agent: str) -> tuple[bool, int]:
        """Whether `agent` may log a line now, and how many it dropped before this one."""
        now = self._clock()
        with self._lock:
            tokens, last, dropped = self._buckets.get(agent, (float(self.burst), now, 0))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[agent] = (tokens, now, dropped + 1)
                allowed = False
            else:
                self._buckets[agent] = (tokens - 1, now, 0)
                allowed = True
        if not allowed and self._on_drop is not None:
            self._on_drop(agent)
        return allowed, 0 if not allowed else dropped


class AgentLogFilter(logging.Filter):
    """Put on the `caxton.agent` logger: drops lines past an agent's rate, and notes on
    the next line that gets through how many were dropped."""

    def __init__(self, limiter: AgentLogLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        allowed, dropped = self.limiter.allow(str(getattr(record, "agent", "")))
        if allowed and dropped:
            record.msg = f"({dropped} earlier lines dropped by the rate limit) {record.msg}"
        return allowed


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")
