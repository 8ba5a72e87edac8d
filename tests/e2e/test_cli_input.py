"""Bad input at the `caxton` command ends in one `✗` line, never a traceback; content and
config too big for an argument are read from a file or stdin; a deploy whose agent cannot
start exits non-zero and says why."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.client import CaxtonClient, InvalidArgument
from tests.e2e.conftest import CLI_TIMEOUT_S, ServerProcess, free_port, write_component
from tests.support import COMPONENTS

pytestmark = pytest.mark.slow

DEEP = "[" * 1000 + "]" * 1000
# over the 128 KiB the kernel allows one argument (MAX_ARG_STRLEN): `Argument list too long`
BIG = json.dumps("x" * 300_000)  # printed as it is: a JSON string indents to itself


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("cli-input") / "data"
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start()
    try:
        yield server
    finally:
        server.kill()


def run(
    *args: str, server: ServerProcess, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`caxton ARGS` with `stdin` as its input; a traceback fails the test at once."""
    result = subprocess.run(
        [sys.executable, "-m", "caxton", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "CAXTON_SERVER": server.address},
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    return result


def to_myself(
    *args: str, server: ServerProcess, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """An inform the sending client addresses to itself: the server hands it back as the
    reply to the send's --wait, so what is printed as the reply is what was sent."""
    return run(
        "send",
        "--to",
        "client:me",
        "--sender",
        "client:me",
        "--performative",
        "inform",
        "--wait",
        "5s",
        *args,
        server=server,
        stdin=stdin,
    )


def reply_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.split("reply inform from client:me:\n", 1)[1].removesuffix("\n")


def test_json_content_nested_a_thousand_deep_is_refused_in_one_line(live: ServerProcess) -> None:
    result = run("send", "--to", "client:me", "--content", DEEP, server=live)

    assert result.returncode == 2
    assert result.stderr == "✗ --content: not valid JSON (nested too deeply to read)\n"


@pytest.mark.parametrize("content", ["NaN", "[1, Infinity]", '{"a": -Infinity}'])
def test_nan_and_infinity_are_not_json_content(live: ServerProcess, content: str) -> None:
    result = run("send", "--to", "client:me", "--content", content, server=live)

    assert result.returncode == 2
    assert "is not JSON (RFC 8259 has no NaN or Infinity)" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_the_server_refuses_nan_content_from_a_client_that_does_not_check(
    live: ServerProcess,
) -> None:
    async def send() -> None:
        async with CaxtonClient(live.address) as client:
            await client.send(["client:me"], "inform", "[NaN]")

    with pytest.raises(InvalidArgument, match="content"):
        asyncio.run(send())


def test_content_over_the_argument_limit_is_read_from_a_file_or_stdin(
    live: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "big.json").write_text(BIG)

    assert reply_of(to_myself("--content", f"@{tmp_path / 'big.json'}", server=live)) == BIG
    assert reply_of(to_myself("--content", "-", server=live, stdin=BIG)) == BIG
    assert reply_of(to_myself("--content", "@-", server=live, stdin=BIG)) == BIG


def test_a_content_file_that_cannot_be_read_is_one_clear_line(
    live: ServerProcess, tmp_path: Path
) -> None:
    missing = run("send", "--to", "client:me", "--content", "@missing.json", server=live)
    directory = run("send", "--to", "client:me", "--content", f"@{tmp_path}", server=live)

    assert missing.returncode == directory.returncode == 2
    assert missing.stderr == (
        "✗ --content @missing.json: cannot read missing.json (No such file or directory); "
        "write @@ for text that starts with @\n"
    )
    assert "(Is a directory)" in directory.stderr


def test_text_that_starts_with_an_at_sign_is_written_with_two(live: ServerProcess) -> None:
    result = to_myself("--language", "text", "--content", "@@alice, see this", server=live)

    assert reply_of(result) == "@alice, see this"


def test_reply_content_is_printed_as_it_is_not_as_markup(live: ServerProcess) -> None:
    text = "[/x] [bold]not bold[/bold] :smile:"

    assert reply_of(to_myself("--language", "text", "--content", text, server=live)) == text


def test_an_escaped_lone_surrogate_in_a_reply_stays_escaped(live: ServerProcess) -> None:
    result = to_myself("--content", '{"a": "\\ud800"}', server=live)

    assert reply_of(result) == '{\n  "a": "\\ud800"\n}'


def test_deploy_config_comes_from_stdin_and_must_be_json(
    live: ServerProcess, tmp_path: Path
) -> None:
    echo = str(write_component(tmp_path, "reply"))

    read = run(
        "agent",
        "deploy",
        echo,
        "--name",
        "configured",
        "--config",
        "-",
        server=live,
        stdin='{"a": 1}',
    )
    refused = run("agent", "deploy", echo, "--name", "nan", "--config", '{"a": NaN}', server=live)

    assert read.returncode == 0 and "✓ Running (1/1 instances healthy)" in read.stdout
    assert refused.returncode == 2
    assert refused.stderr.startswith("✗ --config: not valid JSON (NaN is not JSON")


def test_a_deploy_whose_init_fails_exits_non_zero_and_says_why(
    live: ServerProcess, tmp_path: Path
) -> None:
    failing = str(write_component(tmp_path, "initfail"))

    result = run("agent", "deploy", failing, "--name", "initfails", server=live)

    assert result.returncode == 1
    assert "✓ deployed" not in result.stdout
    assert result.stderr.startswith(
        "✗ initfails did not start: replica 0 failed: init-error: bad config"
    )


def test_a_project_deploy_whose_agent_cannot_start_exits_non_zero_and_retries_it(
    live: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "bad.wat").write_text((COMPONENTS / "initfail.wat").read_text())
    (tmp_path / "caxton.toml").write_text('[agents.projectbad]\nsource = "bad.wat"\n')

    first = run("deploy", "--dir", str(tmp_path), server=live)
    second = run("deploy", "--dir", str(tmp_path), server=live)

    for result in (first, second):  # not remembered as deployed: tried again
        assert result.returncode == 1
        assert "✗ projectbad: deployed" in result.stdout
        assert "projectbad did not start: replica 0 failed: init-error: bad config" in result.stderr


def test_tool_arguments_nested_too_deep_are_refused_in_one_line(live: ServerProcess) -> None:
    result = run("tools", "call", "db", "read_query", "--args", "-", server=live, stdin=DEEP)

    assert result.returncode == 2
    assert result.stderr == "✗ --args: not valid JSON (nested too deeply to read)\n"
