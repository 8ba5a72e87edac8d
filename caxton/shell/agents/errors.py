"""The agent toolchain's exception tree; componentize-py's failures are translated in build.py.

AgentToolError
├── InvalidAgentSource   a Python file that cannot become an agent (file, reason)
├── BuildFailed          componentize-py failed; carries the tail of its output
└── TemplateError        an unknown template, or a file that already exists
"""

from __future__ import annotations


class AgentToolError(Exception):
    """Base of every error of `caxton agent new` and `caxton agent build`."""


class InvalidAgentSource(AgentToolError):
    """A source file with a syntax error, or without exactly one Agent subclass."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class BuildFailed(AgentToolError):
    """componentize-py could not make a component; `output` is the tail of what it printed."""

    def __init__(self, file: str, output: str) -> None:
        super().__init__(f"{file}: componentize-py failed:\n{output}")
        self.file = file
        self.output = output


class TemplateError(AgentToolError):
    """`caxton agent new` with an unknown template, or over an existing file."""
