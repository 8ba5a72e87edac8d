"""Load, soak and fault tests: real `caxton server start` subprocesses driven over gRPC.

Each test has a short form, run in CI, and a long form for `CAXTON_LOAD_LONG=1`
(the durations and rounds the issue names). Latency bounds here are deliberately
loose: these tests catch losses, duplicates, leaks and stalls, and the benchmarks
measure speed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from caxton.client import CaxtonClient
from caxton.domain.events import (
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.ids import is_client, split_instance_key
from tests.e2e.conftest import ServerProcess
from tests.support import free_port

LONG = os.environ.get("CAXTON_LOAD_LONG") == "1"


def long_or_short(long: float, short: float) -> float:
    return long if LONG else short


def start_server(data_dir: Path, *extra: str) -> ServerProcess:
    """A server on a free port (ServerProcess turns the metrics and health ports off)."""
    return ServerProcess(data_dir, f"127.0.0.1:{free_port()}").start(*extra)


def refused_start(data_dir: Path) -> str:
    """What `caxton server start` said when it refused to start on `data_dir` (it must)."""
    refused = subprocess.run(
        [
            sys.executable,
            *("-m", "caxton", "server", "start", "--data-dir", str(data_dir)),
            *("--listen", f"127.0.0.1:{free_port()}", "--metrics", "off", "--health", "off"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    said = (refused.stdout + refused.stderr).strip()
    assert refused.returncode != 0, said
    return said


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def history(client: CaxtonClient) -> list[Recorded]:
    return [r async for r in client.events()]


@dataclass
class Deliveries:
    """Which deliveries to agents the log holds, and how often each was handled."""

    expected: set[tuple[str, str]] = field(default_factory=set)
    handled: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: list[MessageDeadLettered] = field(default_factory=list)
    dead: set[tuple[str, str]] = field(default_factory=set)

    def add(self, recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, MessageSent):
            for target in event.deliveries:
                if not is_client(target):
                    self.expected.add((event.message.id, split_instance_key(target)[0]))
        elif isinstance(event, MessageHandled):
            self.handled[(event.message_id, event.agent)] += 1
        elif isinstance(event, MessageDeadLettered):
            self.dead_letters.append(event)
            self.dead.add((event.message_id, split_instance_key(event.receiver)[0]))

    @property
    def settled(self) -> bool:
        return self.expected <= self.handled.keys() | self.dead

    def check_exactly_once(self) -> None:
        """Every delivery handled once, or dead-lettered (a trap): none lost, none twice."""
        missing = self.expected - self.handled.keys() - self.dead
        assert not missing, f"{len(missing)} deliveries never handled, e.g. {sorted(missing)[:3]}"
        twice = {k: n for k, n in self.handled.items() if n > 1}
        assert not twice, f"{len(twice)} deliveries handled more than once: {list(twice)[:3]}"
        unknown = self.handled.keys() - self.expected
        assert not unknown, f"handled without being sent: {sorted(unknown)[:3]}"


def deliveries(recorded: Iterable[Recorded]) -> Deliveries:
    found = Deliveries()
    for r in recorded:
        found.add(r)
    return found


async def until_settled(client: CaxtonClient, timeout: float = 120) -> list[Recorded]:
    """Follows the log until every delivery to an agent it holds is handled; the history."""
    seen = await history(client)
    state = deliveries(seen)

    async def follow() -> None:
        async for recorded in client.events(from_position=len(seen) + 1, follow=True):
            seen.append(recorded)
            state.add(recorded)
            if state.settled:
                return

    if not state.settled:
        try:
            await asyncio.wait_for(follow(), timeout=timeout)
        except TimeoutError:
            missing = len(state.expected - state.handled.keys() - state.dead)
            raise AssertionError(
                f"{missing} deliveries still unhandled after {timeout} s"
            ) from None
        # read again: the stream may have stopped inside the batch that settled it
        seen = await history(client)
    return seen


def sent_ids(recorded: Iterable[Recorded]) -> list[str]:
    return [r.event.message.id for r in recorded if isinstance(r.event, MessageSent)]


def gap_free(recorded: list[Recorded]) -> None:
    positions = [r.position for r in recorded]
    assert positions == list(range(1, len(positions) + 1)), "the log's positions have gaps"
