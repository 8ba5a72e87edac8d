#!/usr/bin/env python3
"""Set-up and the two everyday commands: `python3 dev.py demo` and `python3 dev.py test`.

Needs only python3 (3.11+). Creates .venv, installs Caxton with its dev tools into it
(again only when pyproject.toml changes), then runs the demo or the full check suite.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import os
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".caxton-installed"
# Real MCP servers from PyPI that the tool bridge's tests run as subprocesses. Each gets
# its own venv: mcp-server-sqlite needs the mcp 1.x SDK, Caxton (and mcp-server-time) 2.x.
TOOL_SERVERS = {
    "sqlite": ["mcp-server-sqlite==2025.4.25", "mcp[cli]>=1.6,<2"],
    "time": ["mcp-server-time==2026.10.19"],
}
TOOL_VENVS = VENV / "tool-servers"


def ensure_installed(*, tool_servers: bool) -> None:
    """.venv with Caxton and its dev tools, and with `tool_servers` the registry MCP servers
    of the tests: whatever is missing or stale, installed side by side (pip mostly waits)."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py itself may run on an older python3)
        sys.exit(f"✗ Caxton needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    installs: list[Callable[[], None]] = []
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == wanted and (BIN / "caxton").exists()):
        if not (BIN / "python").exists():
            print("• creating .venv", flush=True)  # first: clearing it would remove the rest
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        installs.append(lambda: install_caxton(wanted))
    if tool_servers:
        for name, requirements in TOOL_SERVERS.items():
            stamp = TOOL_VENVS / name / ".caxton-installed"
            if not (stamp.exists() and stamp.read_text() == " ".join(requirements)):
                installs.append(functools.partial(install_tool_server, name, requirements))
    with concurrent.futures.ThreadPoolExecutor(max(1, len(installs))) as pool:
        started = [pool.submit(install) for install in installs]
    for future in started:
        future.result()  # an install that failed has shown its output; this exits


def install_caxton(wanted: str) -> None:
    print("• installing Caxton and its tools into .venv (first run takes a minute)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    quiet([*pip, "install", "--upgrade", "pip"])
    quiet([*pip, "install", "-e", f"{ROOT}[dev]"])
    STAMP.write_text(wanted)


def install_tool_server(name: str, requirements: list[str]) -> None:
    """One venv per registry MCP server of the tests, under .venv/tool-servers/NAME."""
    home = TOOL_VENVS / name
    print(f"• installing the {name} MCP server for the tests", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip = [str(home / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    quiet([*pip, "install", *requirements])
    (home / ".caxton-installed").write_text(" ".join(requirements))


def quiet(command: list[str]) -> None:
    """Runs an install step, showing its output only when it fails."""
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"✗ {' '.join(command[2:5])} failed (exit status {result.returncode})")


def run(command: list[str], **env: str) -> None:
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


def demo() -> None:
    run([str(BIN / "caxton"), "demo"])


def test() -> None:
    py = str(BIN / "python")
    steps = [
        ("lint", [str(BIN / "ruff"), "check", "."]),
        ("format", [str(BIN / "ruff"), "format", "--check", "."]),
        ("types", [str(BIN / "mypy")]),
        ("architecture", [str(BIN / "lint-imports")]),
        ("generated code", [py, "-m", "caxton.shell.api.codegen", "--check"]),
    ]
    for name, command in steps:
        print(f"• {name}", flush=True)
        run(command)
    # Two pytest runs (ADR 0009): every test but the load tests on WORKERS processes, then
    # the load tests alone, so that their memory and latency figures have the CPU to
    # themselves. Extra arguments go to both runs. Exit status 5 ("no tests collected")
    # fails the command, as any other non-zero status of either run.
    pytest = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    workers = os.environ.get("CAXTON_TEST_WORKERS", "2")
    # a test or two at a time to each worker, slow ones first (tests/conftest.py)
    spread = ["-n", workers, "--dist", "load", "--maxschedchunk", "2"]
    runs = [
        (
            f"tests but the load tests ({workers} workers)",
            [*pytest, *spread, "-m", "not load", *sys.argv[2:]],
        ),
        ("load tests (alone)", [*pytest, "-m", "load", *sys.argv[2:]]),
    ]
    failed: list[tuple[str, int]] = []
    for name, command in runs:
        print(f"• {name}", flush=True)
        code = subprocess.run(command, cwd=ROOT).returncode
        if code != 0:
            failed.append((name, code))
    for name, code in failed:
        why = " (no tests collected)" if code == 5 else ""
        print(f"✗ {name}: pytest exit status {code}{why}", file=sys.stderr, flush=True)
    if failed:
        sys.exit(failed[0][1])


def bench() -> None:
    """Installs the peers (the `bench` extra) once, then runs `python -m bench [args]`."""
    stamp = VENV / ".caxton-bench-installed"
    wanted = STAMP.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        print("• installing the benchmarks' peers (SPADE, Thespian) and matplotlib", flush=True)
        pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        quiet([*pip, "install", "-e", f"{ROOT}[dev,bench]"])
        stamp.write_text(wanted)
    run([str(BIN / "python"), "-m", "bench", *sys.argv[2:]])


def main() -> None:
    commands = {"demo": demo, "test": test, "bench": bench, "setup": lambda: None}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python3 dev.py demo | test [pytest args] | bench [--quick] | setup")
    ensure_installed(tool_servers=sys.argv[1] in ("test", "setup"))
    commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
