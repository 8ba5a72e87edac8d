"""The `caxton` command line: a client of the server, `server start`, and the agent toolchain."""

from caxton.shell.cli.main import main

__all__ = ["main"]
