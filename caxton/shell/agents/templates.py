"""`caxton agent new NAME --template T`: a starting agent file from one of the templates."""

from __future__ import annotations

import re
from pathlib import Path

from caxton.shell.agents.errors import TemplateError

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES: dict[str, str] = {
    "request-handler": "RequestHandler",
    "contract-net-manager": "ContractNetManager",
    "contract-net-bidder": "Bidder",
}
"""Template name to the name of the agent class it defines."""


def new_agent(name: str, template: str, directory: Path) -> Path:
    """Writes `<directory>/<name>.py` from `template`, its class renamed after `name`."""
    if template not in TEMPLATES:
        raise TemplateError(
            f"unknown template {template!r}; choose one of {', '.join(sorted(TEMPLATES))}"
        )
    module = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_").lower()
    if not module or module[0].isdigit():
        raise TemplateError(f"{name!r} cannot name an agent file (start with a letter)")
    target = directory / f"{module}.py"
    if target.exists():
        raise TemplateError(f"{target} already exists; choose another name or directory")
    text = (TEMPLATE_DIR / f"{template}.py").read_text(encoding="utf-8")
    original = TEMPLATES[template]
    text = re.sub(rf"\bclass {original}\(", f"class {class_name(name)}(", text, count=1)
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def class_name(name: str) -> str:
    """`order-processor` -> `OrderProcessor`."""
    words = re.split(r"[^0-9A-Za-z]+", name)
    joined = "".join(w[:1].upper() + w[1:] for w in words if w)
    return joined if joined and not joined[0].isdigit() else f"Agent{joined}"
