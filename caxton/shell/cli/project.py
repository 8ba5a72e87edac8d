"""`caxton init DIR` writes a project; `caxton deploy` deploys the agents that changed."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import click

from caxton.domain import digests
from caxton.shell.cli.agents import not_started
from caxton.shell.cli.common import Failure, out, run, server_options
from caxton.shell.client import Connection
from caxton.shell.project import (
    ProjectError,
    component_of,
    fingerprint,
    init_project,
    last_deployed,
    read_agents,
    remember_deployed,
)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--agent", default="greeter", show_default=True, help="The example agent's name.")
@click.option(
    "--with-observability",
    is_flag=True,
    help="Also write docker-compose.yml with an OpenTelemetry collector, Jaeger and Prometheus.",
)
def init(directory: Path, agent: str, with_observability: bool) -> None:
    """Write a new project: caxton.toml, agents/ with one example agent."""
    try:
        written = init_project(directory, agent=agent, with_observability=with_observability)
    except ProjectError as exc:
        raise Failure(str(exc)) from None
    out.print(f"✓ wrote a Caxton project in {directory}")
    for path in written:
        out.print(f"  {path.relative_to(directory)}", markup=False)
    out.print(
        f"next: cd {directory} && caxton server start --config caxton.toml, then in another "
        f"terminal in {directory}: caxton agent create NAME --capability C (more agents, "
        "if you like) and caxton deploy",
        markup=False,
    )


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project directory (holding caxton.toml).",
)
@server_options
@run
async def deploy(directory: Path, server: Connection) -> None:
    """Build and deploy every agent of caxton.toml that changed since the last deploy."""
    try:
        specs = read_agents(directory)
    except ProjectError as exc:
        raise Failure(str(exc)) from None
    before = last_deployed(directory)
    done = dict(before)
    changed = 0
    failed: list[str] = []
    async with server.client() as client:
        running = {a.name: a for a in await client.agents()}
        for spec in specs:
            try:
                component, how = await asyncio.to_thread(component_of, directory, spec)
            except ProjectError as exc:
                raise Failure(str(exc)) from None
            mark = fingerprint(spec, component)
            current = running.get(spec.name)
            digest = digests.shown(hashlib.sha256(component).hexdigest())
            same = current is not None and current.component_digest == digest
            if same and before.get(spec.name) == mark:
                out.print(f"· {spec.name}: unchanged", markup=False)
                continue
            why = (
                "new"
                if current is None
                else "component changed"
                if current.component_digest != digest
                else "settings changed"
            )
            info = await client.deploy(
                component,
                spec.name,
                capabilities=spec.capabilities,
                replicas=spec.replicas,
                memory_bytes=spec.memory_bytes,
                timeout_ms=spec.timeout_ms,
                mailbox=spec.mailbox,
                config=spec.config,
                replace=current is not None,
                filename=spec.source.name,
                tools=spec.tools,
            )
            failing = not_started(info)
            if failing:  # not remembered: the next `caxton deploy` tries it again
                failed.append(f"{spec.name} did not start: {failing}")
                done.pop(spec.name, None)
            else:
                done[spec.name] = mark
            remember_deployed(directory, done)
            changed += 1
            sign = "✗" if failing else "✓"
            out.print(
                f"{sign} {spec.name}: deployed ({why}; {how}) {info.status_line}", markup=False
            )
    out.print(f"{changed} of {len(specs)} agents deployed", markup=False)
    if failed:
        raise Failure(f"{'; '.join(failed)} (fix it, then caxton deploy again)")
