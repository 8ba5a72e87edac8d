"""`caxton server start`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from caxton.shell.cli.common import Failure, out


@click.group()
def server() -> None:
    """Run a Caxton server."""


@server.command("start")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the log and components live (default ./.caxton).",
)
@click.option(
    "--listen", default=None, help="HOST:PORT for the gRPC API (default 127.0.0.1:50051)."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A caxton.toml with a [server] table.",
)
@click.option(
    "--store", default=None, help="postgresql://USER@HOST:PORT/DB to keep the log in PostgreSQL."
)
@click.option(
    "--token", envvar="CAXTON_TOKEN", default=None, help="Require this bearer token from clients."
)
@click.option(
    "--synchronous",
    type=click.Choice(["NORMAL", "FULL"], case_sensitive=False),
    default=None,
    help="SQLite durability: NORMAL survives crashes, FULL also power loss.",
)
@click.option("--log-level", default="INFO", show_default=True)
def start(
    data_dir: Path | None,
    listen: str | None,
    config_path: Path | None,
    store: str | None,
    token: str | None,
    synchronous: str | None,
    log_level: str,
) -> None:
    """Start a server in the foreground; Ctrl-C stops it cleanly."""
    from caxton.shell.config import ConfigError, load_config
    from caxton.shell.datadir import DataDirBusy, DataDirUnusable
    from caxton.shell.server import ListenFailed, configure_logging, serve
    from caxton.shell.store import StoreError
    from caxton.shell.wasm import WasmError

    try:
        config = load_config(
            config_path,
            data_dir=data_dir,
            listen=listen,
            store=store,
            token=token,
            synchronous=synchronous,
        )
    except ConfigError as exc:
        raise Failure(str(exc), code=2) from None
    configure_logging(log_level)
    try:
        asyncio.run(serve(config, announce=lambda text: out.print(text, markup=False)))
    except (DataDirBusy, DataDirUnusable, ListenFailed, StoreError, WasmError) as exc:
        raise Failure(str(exc)) from None
