"""The `caxton` command group and its one error boundary."""

from __future__ import annotations

import sys

import click

from caxton import __version__
from caxton.shell.cli.agents import agent
from caxton.shell.cli.cluster import cluster
from caxton.shell.cli.common import Failure, err
from caxton.shell.cli.demo import demo
from caxton.shell.cli.events import events
from caxton.shell.cli.messages import conversations, send, trace
from caxton.shell.cli.ops import config, debug
from caxton.shell.cli.project import deploy, init
from caxton.shell.cli.server import server
from caxton.shell.cli.tools import tools
from caxton.shell.client import CaxtonError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="caxton")
def cli() -> None:
    """Caxton: WebAssembly agents talking FIPA-ACL over a replayable event log."""


cli.add_command(server)
cli.add_command(agent)
cli.add_command(cluster)
cli.add_command(send)
cli.add_command(trace)
cli.add_command(conversations)
cli.add_command(demo)
cli.add_command(tools)
cli.add_command(events)
cli.add_command(config)
cli.add_command(debug)
cli.add_command(init)
cli.add_command(deploy)


def main(group: click.Group = cli) -> None:
    """Entry point: every failure the user can cause ends as one `✗` line, never a traceback."""
    from rich.text import Text

    try:
        group.main(standalone_mode=False, prog_name="caxton")
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (Failure, CaxtonError) as exc:
        err.print(Text.assemble(("✗ ", "red"), str(exc)))
        sys.exit(getattr(exc, "code", 1))
    except KeyboardInterrupt:
        sys.exit(130)
