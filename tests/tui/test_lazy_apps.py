"""The apps' commands are there, but their modules (and Textual) load only when one runs."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from caxton.cli import cli
try:
    cli.main([*sys.argv[1:], "--help"], standalone_mode=False)
except SystemExit:
    pass
print(any(m.split(".")[0] in ("tui", "textual") for m in sys.modules))
"""


def loads_apps(*command: str) -> bool:
    found = subprocess.run(
        [sys.executable, "-c", PROBE, *command], capture_output=True, text=True, check=True
    )
    return found.stdout.strip().splitlines()[-1] == "True"


def test_other_commands_start_without_the_apps() -> None:
    assert not loads_apps("send")
    assert not loads_apps("conversations")


def test_the_app_commands_are_loaded_when_asked_for() -> None:
    assert loads_apps("top")
    assert loads_apps("replay")
