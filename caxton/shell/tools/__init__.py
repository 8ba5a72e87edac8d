"""The tool bridge: MCP servers agents reach through the host's `call-tool` import.

The bridge itself (`caxton.shell.tools.bridge`, on the `mcp` SDK) is imported only by
the server: importing the SDK takes most of a second, which client commands skip.
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
