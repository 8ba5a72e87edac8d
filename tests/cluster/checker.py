"""The checker every cluster fault test runs at its end: the shared log exported as JSON
lines, `caxton cluster check` over it, and `caxton replay --with` of every conversation
against the builds it was recorded with."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from caxton.domain.events import AgentDeployed, AgentTrapped, MessageHandled, Recorded
from caxton.domain.ids import conversation_stream
from caxton.replay.export import jsonl_lines
from caxton.shell.store import EventLog

CHECK_S = 120  # one CLI run, on a busy 2-core machine
AT_ONCE = 2  # replays run side by side (two cores)


@dataclass(frozen=True, slots=True)
class Soundness:
    """What the checker looked at, for a test to print or assert on."""

    export: Path
    summary: str
    """`caxton cluster check`'s one-line summary."""
    replayed: int
    """Conversations re-executed against their recorded builds, all identical."""


def now_ms() -> int:
    """The wall clock in the log's unit: pass it as `settled_after_ms` when a fault ends."""
    return int(time.time() * 1000)


async def assert_log_sound(
    store: str,
    server: str,
    workdir: Path,
    *,
    settled_after_ms: int | None = None,
    gone: Collection[str] = (),
    within_s: float = 30.0,
    acknowledged: Collection[str] = (),
    replay: bool = True,
) -> Soundness:
    """Fails the test (AssertionError with every finding) unless the cluster's log is sound.

    - `store`: the cluster's `postgresql://…?schema=…` URL. The log is read from it and
      written to `workdir/log.jsonl` exactly as `caxton events export --format jsonl`
      writes it, with the node of each event (which the export through the API lacks).
    - `server`: the API address of a node still running; `caxton replay --with` reads
      each conversation through it.
    - `settled_after_ms`: when the fault ended (`now_ms()` after the kill, the SIGCONT,
      the heal); every shard must then be held, within `within_s`, by a node not in
      `gone` (the nodes the fault took down: a killed node's shards look held in the log
      until another node claims them). Without it, only the gaps the log shows are
      bounded (after a release, a stop, a restart) and every shard must be held at the
      end.
    - `within_s`: how long a shard may go without a holder (a lease or two, and a start).
    - `acknowledged`: message ids clients were told were accepted; each must be in the log.
    - `replay`: re-execute every conversation (`caxton replay --conversation C --with
      AGENT=BUILD…` for each agent that handled a message in it, BUILD the component it
      was deployed with), each must report identical.

    Call it once the test's traffic has ended (a message accepted but not yet handled is
    a finding). Returns what was checked."""
    workdir.mkdir(parents=True, exist_ok=True)
    history, builds = await _read(store)
    export = workdir / "log.jsonl"
    export.write_bytes(b"".join(jsonl_lines(history)))
    argv = ["cluster", "check", str(export), "--within", f"{within_s:g}"]
    if settled_after_ms is not None:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(settled_after_ms / 1000))
        argv += ["--after", f"{moment}.{settled_after_ms % 1000:03d}+00:00"]
        if gone:
            argv += ["--gone", ",".join(gone)]
    if acknowledged:
        ids = workdir / "acknowledged.txt"
        ids.write_text("".join(f"{mid}\n" for mid in acknowledged))
        argv += ["--acknowledged", str(ids)]
    code, said = await _caxton(*argv)
    assert code == 0, f"the cluster's log is not sound ({export}):\n{said}"
    replayed = 0
    if replay:
        replayed = await _replay_all(history, builds, server, workdir / "builds")
    return Soundness(export=export, summary=said.strip(), replayed=replayed)


async def _read(store: str) -> tuple[list[Recorded], dict[str, bytes]]:
    """The whole log, and the bytes of every component deployed in it."""
    log = await EventLog.open(store, shared=True)
    try:
        history = await log.read()
        builds: dict[str, bytes] = {}
        for r in history:
            if isinstance(r.event, AgentDeployed) and r.event.component not in builds:
                wasm = await log.get_component(r.event.component)
                assert wasm is not None, f"component {r.event.component} is not in the store"
                builds[r.event.component] = wasm
    finally:
        await log.close()
    return history, builds


def recorded_builds(history: list[Recorded]) -> dict[str, dict[str, str]]:
    """Each conversation's agents that handled (or trapped on) a message in it, with the
    component they were deployed with when its first event was recorded."""
    deployed: dict[str, str] = {}  # agent -> component, as of the event being read
    found: dict[str, dict[str, str]] = {}
    first_seen: dict[str, dict[str, str]] = {}  # conversation -> deployments at its start
    for r in history:
        event = r.event
        if isinstance(event, AgentDeployed):
            deployed[event.agent] = event.component
        conversation = r.stream.removeprefix("conversation:")
        if r.stream == conversation_stream(conversation):
            first_seen.setdefault(conversation, dict(deployed))
        if isinstance(event, MessageHandled) or (
            isinstance(event, AgentTrapped) and event.message_id
        ):
            at_start = first_seen.get(event.conversation_id, deployed)
            component = at_start.get(event.agent) or deployed[event.agent]
            found.setdefault(event.conversation_id, {})[event.agent] = component
    return found


async def _replay_all(
    history: list[Recorded], builds: dict[str, bytes], server: str, directory: Path
) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    for digest, wasm in builds.items():
        (directory / f"{digest}.wasm").write_bytes(wasm)
    conversations = recorded_builds(history)
    room = asyncio.Semaphore(AT_ONCE)

    async def replay(conversation: str, agents: dict[str, str]) -> str:
        pairs = [f"--with={a}={directory / f'{c}.wasm'}" for a, c in sorted(agents.items())]
        async with room:
            code, said = await _caxton(
                "replay", "--conversation", conversation, *pairs, "--server", server
            )
        return "" if code == 0 else f"--- conversation {conversation} (exit {code}):\n{said}"

    failed = await asyncio.gather(*(replay(c, a) for c, a in conversations.items()))
    diverged = [f for f in failed if f]
    assert not diverged, (
        f"{len(diverged)} of {len(conversations)} conversations do not replay identically "
        "against their recorded builds:\n" + "\n".join(diverged)
    )
    return len(conversations)


async def _caxton(*args: str) -> tuple[int, str]:
    """Runs the real CLI; its exit status and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "caxton",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    try:
        async with asyncio.timeout(CHECK_S):
            said, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        said, _ = await process.communicate()
        raise AssertionError(
            f"caxton {' '.join(args)} did not finish in {CHECK_S} s:\n{said.decode()}"
        ) from None
    assert process.returncode is not None
    return process.returncode, said.decode(errors="replace")
