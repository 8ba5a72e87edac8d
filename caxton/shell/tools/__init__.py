"""The tool bridge: MCP servers agents reach through the host's `call-tool` import.

The bridge itself (`caxton.shell.tools.bridge`, on the `mcp` SDK) is imported only by
the server: importing the SDK takes most of a second, which client commands skip.

Errors:

    InvalidToolConfig   a [tools.NAME] table that cannot be used (settings.py)
    ToolServerError     the server cannot start, died or broke the protocol (connection.py)
    ToolRequestError    the server refused the request itself (connection.py)

The last two never leave the bridge: every call ends as a `ToolAnswer`, a failure being
a kind (refused, breaker-open, timeout, server-error, tool-error) and a reason.
"""

from caxton.shell.tools.calls import ToolAnswer, ToolCall, ToolCaller
from caxton.shell.tools.settings import InvalidToolConfig, ToolServerConfig, parse_tool_servers

__all__ = [
    "InvalidToolConfig",
    "ToolAnswer",
    "ToolCall",
    "ToolCaller",
    "ToolServerConfig",
    "parse_tool_servers",
]
