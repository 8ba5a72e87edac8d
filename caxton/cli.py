"""The `caxton` command: the shell's commands, plus those that open a terminal app.

The apps (`tui/`) build on the shell, and the shell never imports them (an import-linter
layer contract), so the full command set is put together here, above both.
"""

from __future__ import annotations

from caxton.shell.cli.main import cli
from caxton.shell.cli.main import main as _main
from tui.commands import replay
from tui.top import top

cli.add_command(replay)
cli.add_command(top)


def main() -> None:
    _main()


__all__ = ["cli", "main"]
