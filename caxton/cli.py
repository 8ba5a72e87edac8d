"""The `caxton` command: the shell's commands, plus those that open a terminal app.

The apps (`tui/`) build on the shell, and the shell never imports them (an import-linter
layer contract), so the full command set is put together here, above both. The apps'
modules (and Textual) are imported only when one of their commands runs: every other
command starts about a fifth of a second sooner.
"""

from __future__ import annotations

import importlib

import click

from caxton.shell.cli.main import cli as _shell
from caxton.shell.cli.main import main as _main

# command name -> (module, attribute)
APPS = {
    "replay": ("tui.commands", "replay"),
    "top": ("tui.top", "top"),
    "monitor": ("tui.top", "monitor"),
}


class _WithApps(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *APPS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in APPS:
            module, attribute = APPS[name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


cli = _WithApps(
    name="caxton",
    commands=_shell.commands,
    params=_shell.params,
    callback=_shell.callback,
    help=_shell.help,
    context_settings=_shell.context_settings,
)


def main() -> None:
    _main(cli)


__all__ = ["cli", "main"]
