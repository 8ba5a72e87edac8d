"""Server settings: defaults, then `caxton.toml`, then command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from caxton.domain.errors import quoted
from caxton.shell.tools.settings import InvalidToolConfig, ToolServerConfig, parse_tool_servers

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_METRICS = "127.0.0.1:9090"
DEFAULT_HEALTH = "127.0.0.1:8081"
DEFAULT_REST = "127.0.0.1:8080"
DEFAULT_GOSSIP = "127.0.0.1:7946"
OFF = "off"
TRACE_EXPORTS = ("none", "console", "otlp-grpc", "otlp-http")
LOG_FORMATS = ("auto", "json", "text")
DEFAULT_DATA_DIR = Path(".caxton")


class ConfigError(Exception):
    """A configuration file or flag that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    listen: str = DEFAULT_LISTEN
    store: str = ""
    token: str = ""
    synchronous: str = "NORMAL"
    tools: tuple[ToolServerConfig, ...] = ()
    """The `[tools.NAME]` tables: MCP servers agents may call (caxton.shell.tools)."""
    metrics: str = DEFAULT_METRICS
    """HOST:PORT of Prometheus `/metrics`, or `off`."""
    health: str = DEFAULT_HEALTH
    """HOST:PORT of `/health` and `/ready`, or `off`."""
    rest: str = DEFAULT_REST
    """HOST:PORT of the REST/JSON gateway (`/api/v1`, `/openapi.json`), or `off`."""
    traces: str = "none"
    """Where spans go: none, console, otlp-grpc or otlp-http."""
    otlp_endpoint: str = ""
    trace_sampling: str = "1.0"
    """The share of traces exported, 0 to 1 (decided by trace id)."""
    log_format: str = "auto"
    """json, text, or auto: text on a terminal, JSON lines otherwise."""
    cluster: str = ""
    """The cluster's name: "" runs a single node; set, the node joins the nodes of that
    name sharing the PostgreSQL log (ADR 0018)."""
    gossip: str = DEFAULT_GOSSIP
    """HOST:PORT of the cluster's membership protocol (SWIM, UDP and TCP)."""
    seeds: str = ""
    """HOST:PORT,… of other nodes' gossip addresses to join through ("" for the first)."""
    node_id: str = ""
    """This node's id; "" takes the data directory's own (made once, kept there)."""
    cluster_key: str = ""
    """A base64 32-byte key that encrypts the membership protocol (needed off loopback)."""
    lease_s: str = "10"
    """Seconds a shard's lease lasts unless renewed: a dead node's agents restart
    elsewhere after about this long."""
    tls_cert: str = ""
    """A PEM certificate (chain): every listener serves TLS with it ("" serves plain)."""
    tls_key: str = ""
    """The certificate's PEM private key, unencrypted."""
    tls_client_ca: str = ""
    """A PEM CA: API clients must present a certificate it signed (mutual TLS)."""

    @property
    def store_url(self) -> str:
        """The log's location: the PostgreSQL URL, or the SQLite file in the data directory."""
        return self.store or str(self.data_dir / "events.db")

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_host_port(self.listen)


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:50051)")
    return host.strip("[]"), int(port)


_KEYS = {
    "data_dir",
    "listen",
    "store",
    "token",
    "synchronous",
    "metrics",
    "health",
    "rest",
    "traces",
    "otlp_endpoint",
    "trace_sampling",
    "log_format",
    "cluster",
    "gossip",
    "seeds",
    "node_id",
    "cluster_key",
    "lease_s",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
}


_TABLES = {"server", "tools", "agents"}
"""Top-level tables of caxton.toml: the server's, its tool servers, and the agents
`caxton deploy` reads (caxton.shell.project)."""


def load_config(path: Path | None, **flags: Any) -> ServerConfig:
    """Reads `[server]` from a TOML file, then applies the flags that were given."""
    config = ServerConfig()
    if path is not None:
        try:
            document = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        strangers = set(document) - _TABLES
        if strangers:
            raise ConfigError(
                f"{path}: unknown table [{sorted(strangers)[0]}] "
                f"(known: {', '.join(f'[{t}]' for t in sorted(_TABLES))})"
            )
        section = document.get("server", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [server] must be a table")
        unknown = set(section) - _KEYS
        if unknown:
            raise ConfigError(
                f"{path}: unknown key server.{sorted(unknown)[0]} "
                f"(known: {', '.join(sorted(_KEYS))})"
            )
        config = _apply(config, section, str(path))
        try:
            tools = parse_tool_servers(document.get("tools", {}), str(path))
        except InvalidToolConfig as exc:
            raise ConfigError(str(exc)) from None
        config = replace(config, tools=tools)
    env_token = os.environ.get("CAXTON_TOKEN", "")
    if env_token and not config.token:
        config = replace(config, token=env_token)
    config = _apply(config, {k: v for k, v in flags.items() if v not in (None, "")}, "flag")
    parse_host_port(config.listen)
    if config.synchronous.upper() not in {"NORMAL", "FULL"}:
        raise ConfigError("synchronous must be NORMAL or FULL")
    _check_observability(config)
    _check_cluster(config)
    _check_tls(config)
    return config


def _check_tls(config: ServerConfig) -> None:
    """Which files go together; whether they can be used is found when the server starts."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError(
            "tls: give both --tls-cert FILE and --tls-key FILE (the certificate and its key)"
        )
    if config.tls_client_ca and not config.tls_cert:
        raise ConfigError(
            "tls_client_ca: mutual TLS needs the server's own --tls-cert FILE --tls-key FILE"
        )


def _check_cluster(config: ServerConfig) -> None:
    if not config.cluster:
        return
    if not config.store.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "cluster: the nodes of a cluster share one log in PostgreSQL: "
            "give --store postgresql://USER@HOST:PORT/DB"
        )
    parse_host_port(config.gossip)
    for seed in filter(None, (s.strip() for s in config.seeds.split(","))):
        try:
            parse_host_port(seed)
        except ConfigError:
            raise ConfigError(f"seeds: {seed!r} is not HOST:PORT") from None
    try:
        lease = float(config.lease_s)
    except ValueError:
        lease = 0.0
    if not 1 <= lease <= 600:
        raise ConfigError(f"lease_s: {config.lease_s!r} is not a number of seconds from 1 to 600")


def _check_observability(config: ServerConfig) -> None:
    for name, value in (
        ("metrics", config.metrics),
        ("health", config.health),
        ("rest", config.rest),
    ):
        if value != OFF:
            try:
                parse_host_port(value)
            except ConfigError:
                raise ConfigError(f"{name}: {value!r} is not HOST:PORT or off") from None
    if config.traces not in TRACE_EXPORTS:
        raise ConfigError(f"traces: {config.traces!r} is not one of {', '.join(TRACE_EXPORTS)}")
    try:
        sampling = float(config.trace_sampling)
    except ValueError:
        sampling = -1.0
    if not 0 <= sampling <= 1:
        raise ConfigError(f"trace_sampling: {config.trace_sampling!r} is not a number from 0 to 1")
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format: {config.log_format!r} is not one of auto, json, text")
    endpoint = config.otlp_endpoint
    # the gRPC exporter also takes HOST:PORT, as OpenTelemetry's own endpoint settings do
    if endpoint and not (
        _is_url(endpoint) or (config.traces == "otlp-grpc" and _is_url(f"http://{endpoint}"))
    ):
        raise ConfigError(
            f"otlp_endpoint: {quoted(endpoint)} is not a URL "
            "(the collector's base URL, e.g. http://127.0.0.1:4318)"
        )


def _is_url(text: str) -> bool:
    """An http(s) URL with a host, and a port if it names one."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for one that is not a port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _apply(config: ServerConfig, values: dict[str, Any], origin: str) -> ServerConfig:
    for key, value in values.items():
        if key == "data_dir":
            value = Path(value)
        elif key in ("trace_sampling", "lease_s") and isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{origin}: {key} must be a string")
        config = replace(config, **{key: value})
    return config
