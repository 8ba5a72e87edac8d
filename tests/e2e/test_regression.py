"""`caxton replay --agent A --with A=FILE`: a new build of one agent on every conversation
it took part in, against a real server's log and real WAT bidders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.domain.events import MessageSent
from caxton.shell.client import CaxtonClient
from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component
from tests.e2e.test_replay import bidder_build, contract_net

pytestmark = pytest.mark.slow


def informing_differently(directory: Path) -> Path:
    """bidder.wat, except that its inform after an accept carries `[]`, not `{}`."""
    source = (Path(__file__).parents[1] / "wasm" / "components" / "bidder.wat").read_text()
    changed = source.replace(r"\"{}\"", r"\"[]\"")
    assert changed != source
    path = directory / "v2.wasm"
    path.write_bytes(bytes(__import__("wasmtime").wat2wasm(changed)))
    return path


async def proposals_only(address: str) -> str:
    """A cfp both bidders answer, and nothing after it."""
    async with CaxtonClient(address) as client:
        cfp = await client.send(
            "capability:bidding",
            "cfp",
            {"task": "paint", "rooms": 1},
            protocol="fipa-contract-net",
            sender="client:buyer",
        )
        proposals = 0
        async for recorded in client.events(conversation_id=cfp.conversation_id, follow=True):
            event = recorded.event
            if isinstance(event, MessageSent) and event.message.performative.value == "propose":
                proposals += 1
                if proposals == 2:
                    return cfp.conversation_id
    raise AssertionError("the proposals never came")


async def bidder_a_alone(address: str) -> str:
    async with CaxtonClient(address) as client:
        sent = await client.send("bidder-a", "request", {"n": 1}, sender="client:other")
        async for recorded in client.events(conversation_id=sent.conversation_id, follow=True):
            if type(recorded.event).__name__ == "MessageHandled":
                return sent.conversation_id
    raise AssertionError("bidder-a never handled the request")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[str]]]:
    """A log with bidder-b in two conversations (proposals only; a whole contract net) and
    a third in which only bidder-a takes part. The server keeps running."""
    directory = tmp_path_factory.mktemp("regression")
    server = ServerProcess(directory / "data", f"127.0.0.1:{free_port()}").start()
    try:
        original = bidder_build(directory, "bidder")
        for name in ("bidder-a", "bidder-b"):
            caxton(
                "agent", "deploy", str(original), "--name", name, "--capability", "bidding",
                "--server", server.address,
            )  # fmt: skip
        first = asyncio.run(proposals_only(server.address))
        second = asyncio.run(contract_net(server.address))
        asyncio.run(bidder_a_alone(server.address))
        yield server, [first, second]
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def regress(server: ServerProcess, build: Path, *extra: str) -> tuple[int, str, str]:
    result = caxton(
        "replay", "--agent", "bidder-b", "--with", f"bidder-b={build}",
        "--log", str(server.data_dir), *extra, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def row(stdout: str, conversation: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(conversation))


def test_the_same_build_is_identical_on_every_conversation_of_the_agent(
    recorded: tuple[ServerProcess, list[str]], tmp_path: Path
) -> None:
    server, (first, second) = recorded
    same = bidder_build(tmp_path, "same")
    result = caxton(
        "replay", "--agent", "bidder-b", "--with", f"bidder-b={same}", "--since", "1d",
        "--server", server.address,
    )  # fmt: skip
    assert result.returncode == 0
    assert "identical" in row(result.stdout, first) and "identical" in row(result.stdout, second)
    assert "2 conversations" in result.stdout  # bidder-a's own conversation is not one
    assert "✓ 2 identical" in result.stdout


def test_a_changed_inform_diverges_in_one_conversation_and_not_the_other(
    recorded: tuple[ServerProcess, list[str]], tmp_path: Path
) -> None:
    server, (first, second) = recorded
    status, stdout, stderr = regress(server, informing_differently(tmp_path))
    assert status == 1, stdout + stderr
    assert "identical" in row(stdout, first)
    diverged = row(stdout, second)
    assert "diverged" in diverged and "accept-proposal from client:buyer" in diverged
    assert "expected  inform → client:buyer {}" in stdout
    assert "came      inform → client:buyer []" in stdout
    assert "✗ 1 identical, 1 diverged" in stdout
    # progress, in a log: where it starts and where it ends
    assert "re-executing bidder-b with v2.wasm: 0/2 conversations" in stderr
    assert "re-executing bidder-b with v2.wasm: 2/2 conversations in" in stderr
    assert "not identical on every conversation" in stderr


def test_a_build_that_traps_and_one_that_asks_the_clock_are_told_apart(
    recorded: tuple[ServerProcess, list[str]], tmp_path: Path
) -> None:
    server, (first, _) = recorded
    status, stdout, _ = regress(server, bidder_build(tmp_path, "broken", price=None))
    assert status == 1
    assert "trapped" in row(stdout, first) and "came      trap: " in stdout
    status, stdout, _ = regress(server, write_component(tmp_path, "clock"))
    assert status == 3, stdout
    assert "needs-host-answer" in row(stdout, first)
    assert "asked the host for now() beyond what was recorded" in stdout


def test_bad_input_is_one_clear_line_with_exit_status_2(
    recorded: tuple[ServerProcess, list[str]], tmp_path: Path
) -> None:
    server, _ = recorded
    same = bidder_build(tmp_path, "same")
    notwasm = tmp_path / "x.wasm"
    notwasm.write_text("hello")
    log = ["--log", str(server.data_dir)]
    for args, words in [
        (["--agent", "nobody", "--with", f"nobody={same}"], "no agent 'nobody'"),
        (
            ["--agent", "bidder-b", "--with", f"bidder-b={same}", "--since", "2999-01-01T00:00Z"],
            "took part in no conversation since 2999",
        ),
        (["--agent", "bidder-b", "--with", f"bidder-b={same}", "--since", "yesterday"], "neither"),
        (["--agent", "bidder-b", "--with", f"bidder-b={tmp_path / 'no.wasm'}"], "cannot read"),
        (["--agent", "bidder-b", "--with", f"bidder-b={notwasm}"], "not a WebAssembly"),
        (["--agent", "bidder-b", "--with", f"bidder-a={same}"], "pass --with bidder-b=FILE"),
        (["--agent", "bidder-b"], "needs the new build"),
    ]:
        result = caxton("replay", *args, *log, check=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    # a log that cannot be read is not a regression either
    gone = ["--log", str(tmp_path / "nowhere")]
    result = caxton(
        "replay", "--agent", "bidder-b", "--with", f"bidder-b={same}", *gone, check=False
    )
    assert result.returncode == 2 and "nowhere" in result.stderr, result.stderr
