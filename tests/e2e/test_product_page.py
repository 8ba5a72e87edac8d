"""The product page's commands, run as it writes them, against a real server subprocess."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest

from caxton.client import AgentInfo, CaxtonClient
from caxton.shell.project import built_path, read_agents
from tests.conftest import AgentBuilds
from tests.e2e.conftest import ServerProcess, caxton, write_component
from tests.support import free_port

ROOT = Path(__file__).parents[2]
ORDER_PROCESSOR = ROOT / "examples" / "order-processing" / "order_processor.py"

PAGE_AGENT_CONFIG = """\
# agent-config.yaml
name: order-processor
version: 1.0.0
runtime: wasm
capabilities:
  - order-processing
  - inventory-checking
resources:
  memory: 128MB
  timeout: 30s
"""
"""The page's "Define Your Agent Configuration", character for character."""

PAGE_CREATE = (
    "caxton agent create order-processor --template request-handler --capability order-processing"
)
PAGE_DEPLOY = "caxton agent deploy order-processor.wasm --config agent-config.yaml --replicas 3"
PAGE_STATUS = "caxton agent status order-processor"


def as_written(command: str) -> list[str]:
    """The page's command line as the arguments of `caxton`."""
    caxton_, *args = shlex.split(command)
    assert caxton_ == "caxton"
    return args


PAGE_ORDER = {"order": {"items": ["item-123", "item-456"], "address": {"street": "123 Main St"}}}


def agent_info(address: str, name: str) -> AgentInfo:
    async def ask() -> AgentInfo:
        async with CaxtonClient(address) as client:
            return await client.agent(name)

    return asyncio.run(ask())


@pytest.mark.slow
def test_the_pages_multi_agent_example_deploys_reports_and_answers_as_written(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    data = tmp_path / "data"
    agent_builds.seed(data, ORDER_PROCESSOR)  # compiled once per session, not per test
    shutil.copyfile(agent_builds.component(ORDER_PROCESSOR), tmp_path / "order-processor.wasm")
    (tmp_path / "agent-config.yaml").write_text(PAGE_AGENT_CONFIG)
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start()
    try:
        deployed = caxton(
            *as_written(PAGE_DEPLOY),
            server=server.address,
            cwd=tmp_path,
        )
        assert "✓ deployed order-processor 1.0.0 (sha256:" in deployed.stdout

        status = caxton(*as_written(PAGE_STATUS), server=server.address)
        assert status.stdout.splitlines()[0] == "✓ Running (3/3 instances healthy)"
        info = agent_info(server.address, "order-processor")
        assert info.capabilities == ("order-processing", "inventory-checking")
        assert (info.memory_bytes, info.timeout_ms) == (128_000_000, 30_000)

        async def invoke() -> str:
            async with CaxtonClient(server.address) as client:
                result = await client.invoke("order-processor", PAGE_ORDER, timeout=60)
                tracking: str = result.json()["tracking_number"]
                return tracking

        assert asyncio.run(invoke()).startswith("TRK-")
    finally:
        server.stop()


@pytest.mark.slow
def test_an_agent_created_in_a_project_is_deployed_with_its_capability(
    tmp_path: Path, agent_builds: AgentBuilds
) -> None:
    caxton(*as_written("caxton init my-system --with-observability"), cwd=tmp_path)
    project = tmp_path / "my-system"
    created = caxton(
        *as_written(PAGE_CREATE),
        cwd=project,
    )
    assert "✓ created order-processor" in created.stdout
    table = tomllib.loads((project / "caxton.toml").read_text())["agents"]["order-processor"]
    assert table["capabilities"] == ["order-processing"]
    # init's example agent is deployed by the tests of `caxton init`; built here, it
    # would only add a minute of componentize-py
    toml = project / "caxton.toml"
    toml.write_text(toml.read_text().replace("[agents.greeter]", "[unused.greeter]"))
    (spec,) = read_agents(project)
    data = tmp_path / "data"
    agent_builds.seed(data, spec.source)
    built = built_path(project, spec)
    built.parent.mkdir(parents=True)
    shutil.copyfile(agent_builds.component(spec.source), built)
    server = ServerProcess(data, f"127.0.0.1:{free_port()}").start()
    try:
        deployed = caxton(*as_written("caxton deploy"), server=server.address, cwd=project).stdout
        assert "✓ order-processor: deployed (new; cached build) ✓ Running" in deployed
        assert agent_info(server.address, "order-processor").capabilities == ("order-processing",)
        answer = caxton(
            *shlex.split("send --to capability:order-processing --content {} --wait 30s"),
            server=server.address,
        )
        assert "inform" in answer.stdout
    finally:
        server.stop()


def test_an_agent_created_alone_gets_an_agent_config_its_deploy_reads(
    tmp_path: Path, server: ServerProcess
) -> None:
    created = caxton(
        *as_written(PAGE_CREATE),
        cwd=tmp_path,
    )
    assert "caxton agent deploy order-processor.wasm --config" in created.stdout
    assert (tmp_path / "order-processor" / "order_processor.py").is_file()
    shutil.copyfile(write_component(tmp_path, "reply"), tmp_path / "order-processor.wasm")

    caxton(
        *as_written(PAGE_DEPLOY.replace("agent-config.yaml", "order-processor/agent-config.yaml")),
        server=server.address,
        cwd=tmp_path,
    )

    info = agent_info(server.address, "order-processor")
    assert (info.capabilities, info.replicas) == (("order-processing",), 3)
    answer = caxton(
        *shlex.split("send --to capability:order-processing --content {} --wait 30s"),
        server=server.address,
    )
    assert "inform" in answer.stdout


def test_monitor_is_top_with_its_options(tmp_path: Path, server: ServerProcess) -> None:
    component = write_component(tmp_path, "reply")
    caxton("agent", "deploy", str(component), "--name", "desk", server=server.address)

    monitor = caxton("monitor", "--once", server=server.address).stdout

    assert monitor == caxton("top", "--once", server=server.address).stdout
    assert "desk" in monitor and "1/1" in monitor


def test_flags_win_over_the_agent_config_file(tmp_path: Path, server: ServerProcess) -> None:
    (tmp_path / "agent-config.yaml").write_text(PAGE_AGENT_CONFIG)
    write_component(tmp_path, "reply")

    caxton(
        *shlex.split("agent deploy reply.wasm --config agent-config.yaml --name desk"),
        *shlex.split("--capability desks --memory 1MiB --timeout 2s"),
        server=server.address,
        cwd=tmp_path,
    )

    info = agent_info(server.address, "desk")
    assert (info.capabilities, info.memory_bytes, info.timeout_ms) == (("desks",), 1 << 20, 2000)


@pytest.mark.parametrize(
    ("yaml", "says"),
    [
        (
            PAGE_AGENT_CONFIG.replace("memory:", "memroy:"),
            "✗ --config agent-config.yaml: resources.memroy: unknown key "
            "(known here: memory, timeout, mailbox)",
        ),
        (
            PAGE_AGENT_CONFIG.replace("128MB", "128 megs"),
            "✗ --config agent-config.yaml: resources.memory: '128 megs' is not a size "
            "(examples: 512KiB, 64MiB, 1GiB)",
        ),
        (
            PAGE_AGENT_CONFIG.replace("30s", "half a minute"),
            "✗ --config agent-config.yaml: resources.timeout: 'half a minute' is not a duration",
        ),
        (
            PAGE_AGENT_CONFIG.replace("  timeout:", "timeout:"),
            "✗ --config agent-config.yaml: timeout: unknown key (known here: name, version, "
            "runtime, capabilities, replicas, resources, tools, config)",
        ),
        (
            PAGE_AGENT_CONFIG.replace("runtime: wasm", "runtime: wasm: 1"),
            "✗ --config agent-config.yaml: not valid YAML (line 4, column 14: "
            "mapping values are not allowed here)",
        ),
        (
            PAGE_AGENT_CONFIG.replace("runtime: wasm", "runtime: docker"),
            "✗ --config agent-config.yaml: runtime: 'docker' is not supported",
        ),
        (
            PAGE_AGENT_CONFIG.replace("name: order-processor\n", ""),
            "✗ order-processor.wasm: name the agent: --name N, or name: in an agent "
            "configuration file",
        ),
    ],
    ids=[
        "misspelt-key",
        "size-unit",
        "duration-unit",
        "key-at-the-wrong-level",
        "not-yaml",
        "runtime",
        "no-name",
    ],
)
def test_a_bad_agent_config_is_one_line_naming_the_key(
    tmp_path: Path, yaml: str, says: str
) -> None:
    (tmp_path / "agent-config.yaml").write_text(yaml)
    (tmp_path / "order-processor.wasm").write_bytes(b"\0asm")  # nothing is sent

    result = caxton(
        *as_written(PAGE_DEPLOY),
        server=f"127.0.0.1:{free_port()}",  # nothing listens: the file is refused first
        cwd=tmp_path,
        check=False,
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(says), result.stderr


def test_an_unknown_template_is_refused_with_the_list(tmp_path: Path) -> None:
    result = caxton("agent", "create", "x", "--template", "nope", cwd=tmp_path, check=False)

    assert result.returncode == 2
    assert "'nope' is not one of 'request-handler', 'contract-net-manager'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_deploy_beside_a_project_says_where_the_project_is(tmp_path: Path) -> None:
    caxton(*as_written("caxton init my-system --with-observability"), cwd=tmp_path)

    result = caxton(*as_written("caxton deploy"), cwd=tmp_path, check=False)

    assert result.returncode == 1
    assert result.stderr == (
        "✗ caxton.toml: not found (my-system/caxton.toml is a project's: "
        "cd my-system, or --dir my-system)\n"
    )


def test_an_agent_config_named_with_an_at_sign_is_json_and_the_error_says_so(
    tmp_path: Path,
) -> None:
    (tmp_path / "agent-config.yaml").write_text(PAGE_AGENT_CONFIG)
    (tmp_path / "order-processor.wasm").write_bytes(b"\0asm")

    result = caxton(
        *shlex.split("agent deploy order-processor.wasm --config @agent-config.yaml"),
        server=f"127.0.0.1:{free_port()}",
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("✗ --config: not valid JSON")
    assert result.stderr.endswith("named without the @: agent-config.yaml\n")
