"""What every client command shares: --server and its credentials, async running, flag
text, errors."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import click
from rich.console import Console

from caxton.domain import strict_json
from caxton.domain.errors import bounded
from caxton.domain.units import parse_duration_ms, parse_size_bytes
from caxton.shell.client import DEFAULT_ADDRESS, Connection

P = ParamSpec("P")
T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True, emoji=False)  # text may quote agents
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class Failure(Exception):
    """A failure already explained in words: printed as `✗ message`, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def server_options(fn: Callable[P, T]) -> Callable[P, T]:
    """Adds --server, --token, --ca, --cert and --key (environment CAXTON_SERVER,
    CAXTON_TOKEN, CAXTON_CA, CAXTON_CERT, CAXTON_KEY), given to the command as one
    `server: Connection`."""

    @functools.wraps(fn)
    def connected(*args: P.args, **kwargs: P.kwargs) -> T:
        kwargs["server"] = Connection(
            address=kwargs.pop("server"),  # type: ignore[arg-type]
            token=kwargs.pop("token"),  # type: ignore[arg-type]
            ca=kwargs.pop("ca"),  # type: ignore[arg-type]
            cert=kwargs.pop("cert"),  # type: ignore[arg-type]
            key=kwargs.pop("key"),  # type: ignore[arg-type]
        )
        return fn(*args, **kwargs)

    for option in reversed(_SERVER_OPTIONS):
        connected = option(connected)
    return connected


_SERVER_OPTIONS = (
    click.option(
        "--server",
        envvar="CAXTON_SERVER",
        default=DEFAULT_ADDRESS,
        show_default=True,
        show_envvar=True,
        help="The Caxton server: HOST:PORT, or https://HOST[:PORT] for TLS.",
    ),
    click.option(
        "--token",
        envvar="CAXTON_TOKEN",
        default="",
        show_envvar=True,
        help="Bearer token, if the server requires one.",
    ),
    click.option(
        "--ca",
        envvar="CAXTON_CA",
        default="",
        metavar="FILE",
        show_envvar=True,
        help="PEM CA that signed an https:// server's certificate (default: the system's).",
    ),
    click.option(
        "--cert",
        envvar="CAXTON_CERT",
        default="",
        metavar="FILE",
        show_envvar=True,
        help="PEM client certificate, for a server that requires one (mutual TLS).",
    ),
    click.option(
        "--key",
        envvar="CAXTON_KEY",
        default="",
        metavar="FILE",
        show_envvar=True,
        help="The client certificate's PEM private key.",
    ),
)


def run(coro_fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Runs an async command body with asyncio.run."""

    @functools.wraps(coro_fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async def main() -> T:
            return await coro_fn(*args, **kwargs)

        return asyncio.run(main())

    return wrapper


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration_ms(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size_bytes(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()
SIZE = Size()

# What a flag may read from a file or stdin: far over any message or config the server takes,
# and small enough that a wrong path (a disk image, /dev/zero) fails at once.
MAX_FLAG_FILE_BYTES = 64 << 20
EXCERPT_CHARS = 200


def flag_text(value: str, flag: str) -> str:
    """What a flag's value names, as curl reads `-d`: `-` or `@-` is stdin, `@FILE` the
    file's text (as it is, final newline included), `@@TEXT` the text `@TEXT`; anything
    else is itself. Files and stdin lift the operating system's 128 KiB argument limit."""
    if value in ("-", "@-"):
        return _utf8(sys.stdin.buffer, "stdin", flag)
    if value.startswith("@@"):
        return value[1:]
    if not value.startswith("@"):
        return value
    if value == "@":
        raise Failure(f"{flag} @: name a file after the @ (or write @@ for a literal @)", code=2)
    path = Path(value[1:])
    try:
        with path.open("rb") as f:
            return _utf8(f, str(path), flag)
    except OSError as exc:
        raise Failure(
            f"{flag} {excerpt(value)}: cannot read {excerpt(str(path))} ({exc.strerror}); "
            "write @@ for text that starts with @",
            code=2,
        ) from None


def _utf8(source: IO[bytes], where: str, flag: str) -> str:
    data = source.read(MAX_FLAG_FILE_BYTES + 1)
    if len(data) > MAX_FLAG_FILE_BYTES:
        raise Failure(f"{flag}: {excerpt(where)} is over {MAX_FLAG_FILE_BYTES >> 20} MiB", code=2)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Failure(
            f"{flag}: {excerpt(where)} is not UTF-8 text (byte {exc.start})", code=2
        ) from None


def parse_json(text: str, flag: str, hint: str = "") -> Any:
    """`text` as JSON, or a Failure that says why not: the domain's strict reader (no NaN or
    Infinity, nesting too deep to read is an error, not a RecursionError)."""
    try:
        return strict_json.loads(text)
    except json.JSONDecodeError as exc:
        raise Failure(f"{flag}: not valid JSON ({exc}){hint}", code=2) from None
    except ValueError as exc:  # NaN, too deep, or an integer of over 4300 digits
        raise Failure(f"{flag}: not valid JSON ({excerpt(str(exc))})", code=2) from None


def excerpt(text: str) -> str:
    """`text`, cut to EXCERPT_CHARS characters with a note of how long it was."""
    return bounded(text, EXCERPT_CHARS)
