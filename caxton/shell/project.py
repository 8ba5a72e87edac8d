"""A Caxton project directory: `caxton init` writes one, `caxton deploy` deploys what changed.

A project is a `caxton.toml` with a `[server]` table (what `caxton server start --config`
reads) and one `[agents.NAME]` table per agent, each naming its source (`.py`, built
with componentize-py; `.wasm`; or `.wat`) and its deployment settings.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caxton.domain.units import parse_duration_ms, parse_size_bytes

CONFIG = "caxton.toml"
BUILD_DIR = Path(".caxton") / "build"


class ProjectError(Exception):
    """A project that cannot be read or written; the message says which file and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    name: str
    source: Path
    replicas: int = 1
    capabilities: tuple[str, ...] = ()
    memory_bytes: int = 0
    timeout_ms: int = 0
    mailbox: int = 0
    config: str = ""
    tools: tuple[str, ...] = field(default=())


_AGENT_KEYS = {
    "source",
    "replicas",
    "capabilities",
    "memory",
    "timeout",
    "mailbox",
    "config",
    "tools",
}


def read_agents(directory: Path) -> list[AgentSpec]:
    """The `[agents.NAME]` tables of `directory/caxton.toml`, in file order."""
    path = directory / CONFIG
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path}: not found ({_projects_below(directory)})") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: not valid TOML ({exc})") from None
    tables = document.get("agents", {})
    if not isinstance(tables, dict) or not tables:
        raise ProjectError(f"{path}: no [agents.NAME] tables to deploy")
    return [_agent(path, name, table) for name, table in tables.items()]


def _projects_below(directory: Path) -> str:
    """Where to look instead: `caxton init my-system` then `caxton deploy` without a `cd`
    is the likeliest way to get here."""
    below = sorted(config.parent for config in directory.glob(f"*/{CONFIG}"))
    if not below:
        return "write one with 'caxton init DIR', or give a project's directory with --dir"
    return f"{below[0] / CONFIG} is a project's: cd {below[0]}, or --dir {below[0]}"


def _agent(path: Path, name: str, table: Any) -> AgentSpec:
    where = f"{path}: agents.{name}"
    if not isinstance(table, dict):
        raise ProjectError(f"{where} must be a table")
    unknown = set(table) - _AGENT_KEYS
    if unknown:
        raise ProjectError(
            f"{where}.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(_AGENT_KEYS))})"
        )
    if "source" not in table:
        raise ProjectError(f"{where}.source: missing (a .py, .wasm or .wat file)")
    source = path.parent / str(table["source"])
    if source.suffix not in (".py", ".wasm", ".wat"):
        raise ProjectError(f"{where}.source: {source.name} is not a .py, .wasm or .wat file")
    try:
        config = table.get("config", {})
        return AgentSpec(
            name=name,
            source=source,
            replicas=int(table.get("replicas", 1)),
            capabilities=tuple(str(c) for c in table.get("capabilities", ())),
            memory_bytes=parse_size_bytes(str(table["memory"])) if "memory" in table else 0,
            timeout_ms=parse_duration_ms(str(table["timeout"])) if "timeout" in table else 0,
            mailbox=int(table.get("mailbox", 0)),
            config=config if isinstance(config, str) else json.dumps(config, sort_keys=True),
            tools=tuple(str(t) for t in table.get("tools", ())),
        )
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"{where}: {exc}") from None


def source_digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def built_path(directory: Path, spec: AgentSpec) -> Path:
    """Where the component built from the spec's source is cached (by source hash)."""
    return directory / BUILD_DIR / f"{spec.name}-{source_digest(spec.source)[:16]}.wasm"


# --- caxton init ------------------------------------------------------------

SERVER_TOML = """\
# Caxton project: `caxton server start --config caxton.toml` reads [server];
# `caxton deploy` builds and deploys every [agents.NAME] that changed.

[server]
data_dir = ".caxton/data"
listen = "127.0.0.1:50051"
metrics = "127.0.0.1:9090"        # Prometheus /metrics, or "off"
health = "127.0.0.1:8081"         # /health and /ready, or "off"
log_format = "auto"               # json, text, or auto (text on a terminal)
{traces}
[agents.{agent}]
source = "agents/{module}.py"
replicas = 1
capabilities = []
timeout = "5s"
memory = "64MiB"
mailbox = 1024
config = {{}}
"""

TRACES_NONE = 'traces = "none"                  # or otlp-grpc, otlp-http, console\n'
TRACES_OTLP = """\
traces = "otlp-grpc"              # spans to the collector of docker-compose.yml
otlp_endpoint = "http://127.0.0.1:4317"
trace_sampling = 1.0
"""

COMPOSE = """\
# The observability stack for this project: `docker compose up -d`, then start Caxton
# on the host (`caxton server start --config caxton.toml`).
#   traces:  Jaeger UI       http://127.0.0.1:16686  (Caxton -> collector :4317 -> Jaeger)
#   metrics: Prometheus UI   http://127.0.0.1:9091   (scrapes Caxton's :9090/metrics)
services:
  otel-collector:
    image: otel/opentelemetry-collector-contrib:latest
    command: ["--config=/etc/otelcol/config.yaml"]
    volumes:
      - ./observability/otel-collector.yaml:/etc/otelcol/config.yaml:ro
    ports:
      - "127.0.0.1:4317:4317"
      - "127.0.0.1:4318:4318"
    depends_on: [jaeger]
  jaeger:
    image: jaegertracing/all-in-one:latest
    environment:
      COLLECTOR_OTLP_ENABLED: "true"
    ports:
      - "127.0.0.1:16686:16686"
  prometheus:
    image: prom/prometheus:latest
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--web.listen-address=:9091"]
    volumes:
      - ./observability/prometheus.yml:/etc/prometheus/prometheus.yml:ro
    extra_hosts:
      - "host.docker.internal:host-gateway"
    ports:
      - "127.0.0.1:9091:9091"
"""

COLLECTOR = """\
# OpenTelemetry Collector: OTLP in (Caxton's spans), Jaeger out.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch: {}
exporters:
  otlp/jaeger:
    endpoint: jaeger:4317
    tls:
      insecure: true
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/jaeger, debug]
"""

PROMETHEUS = """\
# Prometheus: scrape Caxton's /metrics on the host (caxton.toml: metrics = 127.0.0.1:9090;
# serve it on 0.0.0.0:9090 if your Docker cannot reach the host's loopback).
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: caxton
    static_configs:
      - targets: ["host.docker.internal:9090"]
rule_files: []
"""


def init_project(directory: Path, *, agent: str, with_observability: bool) -> list[Path]:
    """Writes a new project; refuses to overwrite one. Returns the files written."""
    from caxton.shell.agents import TemplateError, new_agent

    config = directory / CONFIG
    if config.exists():
        raise ProjectError(f"{config} already exists; 'caxton deploy' deploys it as it is")
    written = []
    try:
        source = new_agent(agent, "request-handler", directory / "agents")
    except TemplateError as exc:
        raise ProjectError(str(exc)) from None
    written.append(source)
    config.write_text(
        SERVER_TOML.format(
            traces=TRACES_OTLP if with_observability else TRACES_NONE,
            agent=agent,
            module=source.stem,
        ),
        encoding="utf-8",
    )
    written.append(config)
    if with_observability:
        for path, text in (
            (directory / "docker-compose.yml", COMPOSE),
            (directory / "observability" / "otel-collector.yaml", COLLECTOR),
            (directory / "observability" / "prometheus.yml", PROMETHEUS),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


# --- caxton deploy ------------------------------------------------------------

DEPLOYED = Path(".caxton") / "deployed.json"


def component_of(directory: Path, spec: AgentSpec) -> tuple[bytes, str]:
    """The component's bytes (a Python source is built once per source hash), and how
    it was obtained: `built in 9.8s`, `cached build`, or the file's name."""
    if spec.source.suffix == ".wasm":
        return _read(spec.source), spec.source.name
    if spec.source.suffix == ".wat":
        import wasmtime

        try:
            return bytes(wasmtime.wat2wasm(spec.source.read_text(encoding="utf-8"))), "wat"
        except (OSError, wasmtime.WasmtimeError) as exc:
            raise ProjectError(f"{spec.source}: {str(exc).splitlines()[0]}") from None
    if not spec.source.is_file():
        raise ProjectError(f"{spec.source}: not found (agents.{spec.name}.source)")
    target = built_path(directory, spec)
    if target.exists():
        return _read(target), "cached build"
    from caxton.shell.agents import AgentToolError, build_agent

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = build_agent(spec.source, target)
    except AgentToolError as exc:
        raise ProjectError(f"building {spec.source}: {exc}") from None
    return _read(target), f"built in {result.seconds:.1f}s"


def fingerprint(spec: AgentSpec, component: bytes) -> str:
    """What a deploy of the spec depends on: the component and every setting."""
    settings = {
        "component": hashlib.sha256(component).hexdigest(),
        "replicas": spec.replicas,
        "capabilities": sorted(spec.capabilities),
        "memory": spec.memory_bytes,
        "timeout": spec.timeout_ms,
        "mailbox": spec.mailbox,
        "config": spec.config,
        "tools": sorted(spec.tools),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def last_deployed(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / DEPLOYED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember_deployed(directory: Path, fingerprints: dict[str, str]) -> None:
    path = directory / DEPLOYED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fingerprints, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror})") from None
