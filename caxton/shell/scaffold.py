"""`caxton agent create`: an agent from a template, with its deployment settings written down.

In a project (a directory holding `caxton.toml`) the agent is `agents/MODULE.py` plus an
`[agents.NAME]` table, which `caxton deploy` deploys. Elsewhere it is a folder `NAME/`
holding `MODULE.py` and `agent-config.yaml`, which `caxton agent deploy --config` reads.
Either way its capabilities are recorded where its deploy reads them.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from caxton.domain.acl import is_valid_agent_name
from caxton.domain.errors import quoted
from caxton.shell.agent_config import FILE_NAME, write_agent_config
from caxton.shell.agents import TemplateError, new_agent
from caxton.shell.project import CONFIG, ProjectError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    source: Path
    settings: Path
    """`caxton.toml` (the agent is one of the project's) or the agent's `agent-config.yaml`."""

    @property
    def in_project(self) -> bool:
        return self.settings.name == CONFIG


def create_agent(
    directory: Path, name: str, *, template: str, capabilities: tuple[str, ...]
) -> Created:
    """Writes the agent's source and its settings; refuses to overwrite either."""
    if not is_valid_agent_name(name):
        raise ProjectError(
            f"{quoted(name)} is not a valid agent name (letters, digits, '_', '-', '.')"
        )
    for capability in capabilities:
        if not is_valid_agent_name(capability):
            raise ProjectError(
                f"--capability {quoted(capability)}: not a valid capability name "
                "(letters, digits, '_', '-', '.')"
            )
    if (directory / CONFIG).is_file():
        return _in_project(directory, name, template, capabilities)
    folder = directory / name
    settings = folder / FILE_NAME
    if settings.exists():
        raise ProjectError(f"{settings} already exists; choose another name or directory")
    source = _source(name, template, folder)
    return Created(source=source, settings=write_agent_config(settings, name, capabilities))


def _in_project(
    directory: Path, name: str, template: str, capabilities: tuple[str, ...]
) -> Created:
    config = directory / CONFIG
    try:
        text = config.read_text(encoding="utf-8")
        agents = tomllib.loads(text).get("agents", {})
    except OSError as exc:
        raise ProjectError(f"{config}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{config}: not valid TOML ({exc})") from None
    if isinstance(agents, dict) and name in agents:
        raise ProjectError(f"{config}: agents.{name} already exists; choose another name")
    source = _source(name, template, directory / "agents")
    key = name if _BARE_KEY.match(name) else json.dumps(name)
    table = (
        f"\n[agents.{key}]\n"
        f'source = "agents/{source.name}"\n'
        "replicas = 1\n"
        f"capabilities = {json.dumps(list(capabilities))}\n"
        'timeout = "5s"\n'
        'memory = "64MiB"\n'
        "mailbox = 1024\n"
        "config = {}\n"
    )
    separator = "" if not text or text.endswith("\n") else "\n"
    config.write_text(text + separator + table, encoding="utf-8")
    return Created(source=source, settings=config)


def _source(name: str, template: str, folder: Path) -> Path:
    try:
        return new_agent(name, template, folder)
    except TemplateError as exc:
        raise ProjectError(str(exc)) from None
