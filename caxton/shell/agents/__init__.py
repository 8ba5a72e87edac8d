"""The agent toolchain: templates, the Python SDK, and the componentize-py build."""

from caxton.shell.agents.build import (
    BuildResult,
    build_agent,
    build_inputs_digest,
    cached_build,
    find_agent_class,
)
from caxton.shell.agents.errors import (
    AgentToolError,
    BuildFailed,
    InvalidAgentSource,
    TemplateError,
)
from caxton.shell.agents.templates import TEMPLATES, new_agent

__all__ = [
    "TEMPLATES",
    "AgentToolError",
    "BuildFailed",
    "BuildResult",
    "InvalidAgentSource",
    "TemplateError",
    "build_agent",
    "build_inputs_digest",
    "cached_build",
    "find_agent_class",
    "new_agent",
]
