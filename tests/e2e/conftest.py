"""End-to-end fixtures: a real `caxton server start` subprocess and the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import free_port, wat

__all__ = ["ServerProcess", "caxton", "free_port", "server", "write_component"]

CLI_TIMEOUT_S = 120


def write_component(directory: Path, name: str) -> Path:
    path = directory / f"{name}.wasm"
    path.write_bytes(wat(name))
    return path


@dataclass
class ServerProcess:
    data_dir: Path
    address: str
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    def start(self, *extra: str) -> ServerProcess:
        # the default ports (9090, 8081, 8080) would collide between servers run in parallel
        for flag in ("--metrics", "--health", "--rest"):
            if flag not in extra:
                extra = (*extra, flag, "off")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "caxton",
                "server",
                "start",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                self.address,
                "--log-level",
                "WARNING",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the server announces readiness on stdout
            self.lines.append(line)
            if "listening on" in line:
                return self
        raise AssertionError("server exited before it was ready:\n" + "".join(self.lines))

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        self.lines.append(out)
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.communicate(timeout=30)


def caxton(
    *args: str,
    server: str | None = None,
    check: bool = True,
    timeout_s: float = CLI_TIMEOUT_S,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    if server:
        env["CAXTON_SERVER"] = server
    # its own process group: on a timeout, the servers it started (`caxton demo`) go too
    with subprocess.Popen(
        [sys.executable, "-m", "caxton", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=30)
            raise AssertionError(
                f"caxton {' '.join(args)} did not finish in {timeout_s:g} s:\n{stdout}{stderr}"
            ) from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(
            f"caxton {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.kill()
