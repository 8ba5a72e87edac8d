"""`agent-config.yaml`: read by `caxton agent deploy --config`, written by `agent create`."""

from __future__ import annotations

from pathlib import Path

import yaml

from caxton.domain.agent_config import AgentConfig, agent_config
from caxton.domain.errors import InvalidAgentSpec
from caxton.shell.project import ProjectError

SUFFIXES = (".yaml", ".yml")
FILE_NAME = "agent-config.yaml"

TEMPLATE = """\
# {name}: `caxton agent deploy AGENT.wasm --config {path}` reads this file.
# Flags given on the command line win over it (--name, --replicas, --capability, ...).
name: {name}
version: 0.1.0
runtime: wasm
capabilities:{capabilities}
replicas: 1
resources:
  memory: 64MiB      # linear memory per instance (512KiB, 64MiB, 1GiB; MB = 1000^2 bytes)
  timeout: 5s        # wall-clock budget per message (200ms, 5s, 1m)
  mailbox: 1024      # messages queued per instance
config: {{}}          # what the agent's init() receives
"""


def names_a_config_file(value: str) -> bool:
    """Whether a `--config` value names an agent configuration file rather than being
    JSON: JSON text never ends in `.yaml` or `.yml`."""
    return not value.startswith("@") and value.lower().endswith(SUFFIXES)


def read_agent_config(path: Path) -> AgentConfig:
    """The file's configuration; a ProjectError names the file, the key and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{path}: not found") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path}: not UTF-8 text") from None
    try:
        return agent_config(_document(path, text))
    except InvalidAgentSpec as exc:
        raise ProjectError(f"{path}: {exc}") from None


def _document(path: Path, text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProjectError(f"{path}: not valid YAML ({where}{exc.problem})") from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML ({exc})") from None


def write_agent_config(path: Path, name: str, capabilities: tuple[str, ...]) -> Path:
    """Writes a new agent configuration file; refuses to overwrite one."""
    if path.exists():
        raise ProjectError(f"{path} already exists; choose another name or directory")
    listed = "".join(f"\n  - {c}" for c in capabilities) or " []"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, path=path, capabilities=listed), encoding="utf-8")
    return path
