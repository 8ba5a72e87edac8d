"""Replay and export: pure views over recorded events."""

from caxton.replay.trace import TraceLine, format_line, trace_lines

__all__ = ["TraceLine", "format_line", "trace_lines"]
