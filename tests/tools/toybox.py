"""A small MCP server for the tool bridge's tests, written with the SDK (not the protocol).

    python -m tests.tools.toybox                    # stdio
    python -m tests.tools.toybox --http PORT        # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: `echo` (its text back, as text and structured content), `add`, `hang` (sleeps
for `seconds`, after writing its pid to `pid_file` when given, so a test can kill the
process mid-call), `fail` (an error result), `big` (`size` bytes of text), `pid`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

toybox = MCPServer("toybox", log_level="WARNING")


@toybox.tool()
def echo(text: str) -> dict[str, str]:
    """Returns the text it was given."""
    return {"text": text}


@toybox.tool()
def add(a: int, b: int) -> int:
    """a + b."""
    return a + b


@toybox.tool()
async def hang(seconds: float = 3600.0, pid_file: str = "") -> str:
    """Sleeps (a server that hangs); writes its pid to `pid_file` first when given."""
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    await asyncio.sleep(seconds)
    return "woke up"


@toybox.tool()
def fail(reason: str = "it went wrong") -> str:
    """Always fails: an error result, not a protocol error."""
    raise ToolError(reason)


@toybox.tool()
def big(size: int) -> str:
    """`size` bytes of text."""
    return "x" * size


@toybox.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0, help="serve streamable HTTP on this port")
    options = parser.parse_args()
    if options.http:
        toybox.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        toybox.run()


if __name__ == "__main__":
    main()
