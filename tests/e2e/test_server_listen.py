"""A server that cannot listen on its address says so in one line and stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, caxton

pytestmark = pytest.mark.slow


def test_a_second_server_on_the_same_address_is_a_clear_error(
    server: ServerProcess, tmp_path: Path
) -> None:
    second = caxton(
        "server",
        "start",
        "--data-dir",
        str(tmp_path / "other"),
        "--listen",
        server.address,
        "--metrics",
        "off",
        "--health",
        "off",
        "--rest",
        "off",
        check=False,
    )
    assert second.returncode == 1
    assert f"✗ cannot listen on {server.address}" in second.stderr
    assert "Traceback" not in second.stdout + second.stderr
