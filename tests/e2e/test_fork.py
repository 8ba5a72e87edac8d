"""`caxton replay --conversation ID --fork-at STEP --edit F=V --no-tui`: a conversation run
again from one edited message, against a real server's log and real WAT agents."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.shell.client import CaxtonClient
from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component
from tests.e2e.test_replay import bidder_build, contract_net

pytestmark = pytest.mark.slow


async def ask_quoter(address: str) -> str:
    async with CaxtonClient(address) as client:
        sent = await client.send(
            "quoter", "request", {"price": 7}, sender="client:buyer", wait_ms=5_000
        )
        assert sent.reply is not None and sent.reply.content == '{"price": 7}'
        return sent.conversation_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A log with a quoter asked once, and a contract net with two bidders."""
    directory = tmp_path_factory.mktemp("fork")
    server = ServerProcess(directory / "data", f"127.0.0.1:{free_port()}").start()
    try:
        quoter = write_component(directory, "quote")
        caxton("agent", "deploy", str(quoter), "--name", "quoter", "--server", server.address)
        bidder = bidder_build(directory, "bidder")
        for name in ("bidder-a", "bidder-b"):
            caxton(
                "agent", "deploy", str(bidder), "--name", name, "--capability", "bidding",
                "--server", server.address,
            )  # fmt: skip
        quoted = asyncio.run(ask_quoter(server.address))
        cnet = asyncio.run(contract_net(server.address))
    finally:
        server.stop()
    yield server.data_dir, quoted, cnet


def fork(data_dir: Path, conversation: str, *args: str) -> tuple[int, str, str]:
    result = caxton(
        "replay", "--conversation", conversation, "--log", str(data_dir), *args, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def steps(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r"^. +\d+  \[", line)]


def test_the_edited_content_reaches_the_receiver_and_changes_its_reply(
    recorded: tuple[Path, str, str],
) -> None:
    data_dir, quoted, _ = recorded
    status, stdout, stderr = fork(
        data_dir, quoted, "--fork-at", "1", "--edit", 'content={"price": 5}', "--no-tui"
    )
    assert status == 0, stdout + stderr
    sent, handled, reply = steps(stdout)
    assert sent.startswith("✎") and "request" in sent and '{"price":5}' in sent
    assert handled.startswith("↻") and "quoter#0" in handled
    assert reply.startswith("≠") and "inform" in reply and reply.endswith('{"price":5}')
    original = caxton("replay", "--conversation", quoted, "--log", str(data_dir), "--print").stdout
    assert "Fork of" not in original  # the log itself is untouched


def test_a_rejected_bidder_no_longer_informs_and_the_rest_is_as_recorded(
    recorded: tuple[Path, str, str],
) -> None:
    data_dir, _, cnet = recorded
    printed = caxton("replay", "--conversation", cnet, "--log", str(data_dir), "--print").stdout
    rows = [line for line in printed.splitlines() if re.match(r"^ +\d+  \[", line)]
    accept = next(r for r in rows if "sent" in r and "accept-proposal" in r)
    step = accept.split()[0]
    status, stdout, _ = fork(
        data_dir, cnet, "--fork-at", step, "--edit", "performative=reject-proposal", "--no-tui"
    )
    assert status == 0
    forked = steps(stdout)
    assert any(line.startswith("✎") and "reject-proposal" in line for line in forked)
    assert any(line.startswith("↻") and "bidder-b#0" in line for line in forked)
    assert not any("inform" in line for line in forked)  # bidder-b informs only when accepted
    before = forked[: int(step) - 1]
    assert all(line.startswith(" ") for line in before)  # as recorded up to the fork


def test_bad_fork_input_is_one_clear_line(recorded: tuple[Path, str, str]) -> None:
    data_dir, quoted, _ = recorded
    for args, words in [
        (["--fork-at", "1", "--edit", "colour=red"], "no field 'colour' to edit"),
        (["--fork-at", "2", "--edit", "content={}"], "step 2 is a MessageHandled, not a message"),
        (["--fork-at", "99", "--edit", "content={}"], "the conversation has steps 1 to 3"),
        (["--fork-at", "1", "--edit", "content={nope"], "not valid JSON"),
        (["--fork-at", "1", "--edit", "performative=haggle"], "'haggle' is not a performative"),
        (["--fork-at", "1", "--edit", 'content={"price": 7}'], "leaves the message at step 1"),
        (["--edit", "content={}"], "--edit goes with --fork-at"),
        (["--fork-at", "1"], "takes one or more --edit"),
    ]:
        status, stdout, stderr = fork(data_dir, quoted, *args, "--no-tui")
        assert status == 2, (args, stdout, stderr)
        assert words in stderr, (args, stderr)
