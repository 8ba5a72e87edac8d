"""Helpers for the WebAssembly host tests: WAT components and recording host services."""

from __future__ import annotations

from collections.abc import Callable

from caxton.domain.events import Limits
from caxton.shell.wasm import LoadedComponent, SendRefused, ToolFailed

Loader = Callable[[str], LoadedComponent]


class Recorder:
    """HostServices that buffers everything, answers fixed values, and refuses on demand."""

    def __init__(self, *, refuse: str = "", clock: int = 1_700_000_000_000) -> None:
        self.sent: list[str] = []
        self.logs: list[tuple[str, str]] = []
        self.journal: list[tuple[str, int]] = []
        self.refuse = refuse
        self.clock = clock

    def send(self, envelope_json: str) -> str:
        if self.refuse:
            raise SendRefused(self.refuse)
        self.sent.append(envelope_json)
        return f"m{len(self.sent)}"

    def log(self, level: str, text: str) -> None:
        self.logs.append((level, text))

    def now(self) -> int:
        self.journal.append(("now", self.clock))
        return self.clock

    def random(self) -> int:
        self.journal.append(("random", 0xDEADBEEF))
        return 0xDEADBEEF

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        raise ToolFailed(f"no tool {server}/{tool}")


FAST = Limits(memory_bytes=1 << 20, timeout_ms=20)
