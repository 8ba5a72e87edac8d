"""`caxton init` writes a project a server starts from; `caxton deploy` deploys what changed."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from caxton.shell.agents import find_agent_class
from caxton.shell.config import load_config
from tests.e2e.conftest import ServerProcess, caxton
from tests.support import COMPONENTS, free_port

pytestmark = pytest.mark.slow


def test_init_writes_a_project_with_its_observability_stack(tmp_path: Path) -> None:
    project = tmp_path / "shop"

    result = caxton("init", str(project), "--agent", "order-desk", "--with-observability")

    assert "✓ wrote a Caxton project" in result.stdout
    config = load_config(project / "caxton.toml")
    assert (config.metrics, config.health, config.traces) == (
        "127.0.0.1:9090",
        "127.0.0.1:8081",
        "otlp-grpc",
    )
    assert config.otlp_endpoint == "http://127.0.0.1:4317"
    agents = tomllib.loads((project / "caxton.toml").read_text())["agents"]
    assert agents["order-desk"]["source"] == "agents/order_desk.py"
    assert find_agent_class(project / "agents" / "order_desk.py") == "OrderDesk"
    compose = (project / "docker-compose.yml").read_text()
    assert "4317:4317" in compose and "prometheus" in compose
    assert "host.docker.internal:9090" in (project / "observability" / "prometheus.yml").read_text()
    assert "otlp" in (project / "observability" / "otel-collector.yaml").read_text()

    again = caxton("init", str(project), check=False)
    assert (
        again.returncode == 1 and again.stderr.startswith("✗ ") and "already exists" in again.stderr
    )


def test_deploy_deploys_only_what_changed(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    caxton("init", str(project))
    shutil.copy(COMPONENTS / "reply.wat", project / "agents" / "echo.wat")
    toml = project / "caxton.toml"
    toml.write_text(
        toml.read_text().split("\n[agents.")[0]
        + "\n"
        + '[agents.echo]\nsource = "agents/echo.wat"\nreplicas = 2\ntimeout = "5s"\n'
    )
    server = ServerProcess(tmp_path / "data", f"127.0.0.1:{free_port()}").start(
        "--config", str(toml)
    )
    try:
        first = caxton("deploy", "--dir", str(project), server=server.address).stdout
        assert "✓ echo: deployed (new; wat) ✓ Running (2/2 instances healthy)" in first
        assert "1 of 1 agents deployed" in first

        again = caxton("deploy", "--dir", str(project), server=server.address).stdout
        assert "· echo: unchanged" in again and "0 of 1 agents deployed" in again

        toml.write_text(toml.read_text().replace('timeout = "5s"', 'timeout = "2s"'))
        settings = caxton("deploy", "--dir", str(project), server=server.address).stdout
        assert "✓ echo: deployed (settings changed" in settings
        status = caxton("agent", "list", server=server.address).stdout
        assert "echo" in status

        (project / "agents" / "echo.wat").write_text((COMPONENTS / "silent.wat").read_text())
        component = caxton("deploy", "--dir", str(project), server=server.address).stdout
        assert "✓ echo: deployed (component changed" in component

        broken = project / "broken"
        broken.mkdir()
        missing = caxton("deploy", "--dir", str(broken), server=server.address, check=False)
        assert missing.returncode == 1 and "caxton.toml: not found" in missing.stderr
    finally:
        server.stop()
