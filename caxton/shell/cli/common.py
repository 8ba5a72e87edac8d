"""What every client command shares: --server, --token, async running, and error display."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console

from caxton.domain.units import parse_duration_ms, parse_size_bytes

P = ParamSpec("P")
T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Failure(Exception):
    """A failure already explained in words: printed as `✗ message`, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def server_options(fn: Callable[P, T]) -> Callable[P, T]:
    """Adds --server and --token (environment CAXTON_SERVER, CAXTON_TOKEN)."""
    fn = click.option(
        "--token",
        envvar="CAXTON_TOKEN",
        default="",
        show_envvar=True,
        help="Bearer token, if the server requires one.",
    )(fn)
    fn = click.option(
        "--server",
        envvar="CAXTON_SERVER",
        default="127.0.0.1:50051",
        show_default=True,
        show_envvar=True,
        help="HOST:PORT of the Caxton server.",
    )(fn)
    return fn


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
