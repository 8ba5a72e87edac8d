"""The `caxton` command line: a gRPC client of the server, plus `server start` and the agent toolchain."""

from caxton.shell.cli.main import main

__all__ = ["main"]
