"""Tool calls and host answers as a person reads them: the replay views' and trace's words.

A tool step reads `bidder → ⚙ time.get_current_time {"timezone": "UTC"}`; its result
is MCP's `CallToolResult`, shown by what it carries (structured content, else its
text); a handling's journal reads one line per answer (`now`, `random`, a tool call)
or log line, in the order the agent got them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from caxton.domain.events import HostCall
from caxton.domain.journal import (
    LOG,
    LOG_DROPPED,
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    dropped_count,
    read_log,
)
from caxton.domain.tools import read_journal_value

TOOL_MARK = "⚙"
EXCERPT = 60
"""Characters of arguments or a result shown on one line; the detail shows them whole."""


def tool_lane(server: str) -> str:
    """The sequence diagram's lane of an MCP server: `⚙ time`."""
    return f"{TOOL_MARK} {server}"


def took(duration_us: int) -> str:
    """`0.4ms`, `3.2ms`, `412ms`: tenths under 10 ms, whole milliseconds above."""
    if duration_us < 100:
        return "<0.1ms"
    if duration_us < 10_000:
        return f"{duration_us / 1000:.1f}ms"
    return f"{duration_us // 1000}ms"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """JSON on one line as a person types it (`{"timezone": "UTC"}`), anything else with
    its whitespace folded; cut to `limit` characters with `…` (0: whole)."""
    try:
        flat = json.dumps(json.loads(text), ensure_ascii=False)
    except (ValueError, RecursionError):
        flat = " ".join(text.split())
    return flat if not limit or len(flat) <= limit else flat[: limit - 1] + "…"


def result_body(result_json: str) -> str:
    """What a tool's `CallToolResult` says: its structured content as JSON, else its text
    parts (each of them JSON when they are), else other parts by type; the text as it
    is when it is no `CallToolResult`."""
    try:
        data = json.loads(result_json)
    except (ValueError, RecursionError):
        return result_json
    if not isinstance(data, dict):
        return result_json
    structured = data.get("structuredContent")
    if structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    parts: list[str] = []
    for item in data.get("content") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            parts.append(f"[{item.get('type', '?')} {item.get('mimeType', '')}]".replace(" ]", "]"))
    if data.get("truncated"):
        parts.append(f"(truncated from {data.get('size', '?')} bytes)")
    return "\n".join(parts) if parts else result_json


def journal_lines(journal: Iterable[HostCall]) -> list[str]:
    """One line per journal entry, in order: what the host answered, what the agent logged."""
    return [_entry(call) for call in journal]


def _entry(call: HostCall) -> str:
    kind, value = call.kind, call.value
    if kind == "now" and value.isascii() and value.isdigit():
        return f"{'now':<11}{value} ({_utc(int(value))})"
    if kind == "random" and value.isascii() and value.isdigit():
        return f"{'random':<11}{value} (0x{int(value):016x})"
    if kind == "call-tool":
        try:
            entry = read_journal_value(value)
        except (ValueError, KeyError, TypeError):
            return f"{'call-tool':<11}{excerpt(value)}"
        answer = (
            f"✗ {excerpt(entry.error)}"
            if entry.error is not None
            else excerpt(result_body(entry.ok or ""))
        )
        return f"{'call-tool':<11}{entry.server}.{entry.tool} {excerpt(entry.args)} → {answer}"
    if kind == "tool-error":  # logs written before call-tool held both outcomes
        return f"{'call-tool':<11}✗ {excerpt(value)}"
    if kind == LOG:
        level, text = read_log(call)
        return f"{'log ' + level:<11}{text}"
    if kind == LOG_DROPPED:
        return (
            f"… {dropped_count(call)} more log lines dropped (a handling journals at most "
            f"{MAX_LOG_LINES} lines, {MAX_LOG_BYTES // 1024} KiB)"
        )
    return f"{kind:<11}{excerpt(value)}"


def _utc(at: int) -> str:
    try:
        moment = datetime.fromtimestamp(at / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return "not a time"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{at % 1000:03d} UTC"


__all__ = ["TOOL_MARK", "excerpt", "journal_lines", "result_body", "took", "tool_lane"]
