"""`caxton server start`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from caxton.shell.cli.common import Failure, err, out


@click.group()
def server() -> None:
    """Run a Caxton server."""


@server.command("start")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the log and components live (default ./.caxton).",
)
@click.option(
    "--listen", default=None, help="HOST:PORT for the gRPC API (default 127.0.0.1:50051)."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A caxton.toml with a [server] table.",
)
@click.option(
    "--store", default=None, help="postgresql://USER@HOST:PORT/DB to keep the log in PostgreSQL."
)
@click.option(
    "--token", envvar="CAXTON_TOKEN", default=None, help="Require this bearer token from clients."
)
@click.option(
    "--synchronous",
    type=click.Choice(["NORMAL", "FULL"], case_sensitive=False),
    default=None,
    help="SQLite durability: NORMAL survives crashes, FULL also power loss.",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--metrics", default=None, help="HOST:PORT for Prometheus /metrics, or off (127.0.0.1:9090)."
)
@click.option(
    "--health", default=None, help="HOST:PORT for /health and /ready, or off (127.0.0.1:8081)."
)
@click.option(
    "--rest",
    default=None,
    help="HOST:PORT for the REST/JSON gateway, or off (127.0.0.1:8080).",
)
@click.option(
    "--traces",
    type=click.Choice(["none", "console", "otlp-grpc", "otlp-http"]),
    default=None,
    help="Where spans go (default none).",
)
@click.option(
    "--otlp-endpoint",
    default=None,
    help="The collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT (otlp-http posts to "
    "/v1/traces under it). Default http://127.0.0.1:4317, or :4318 for otlp-http.",
)
@click.option("--trace-sampling", default=None, help="Share of traces exported, 0 to 1 (1).")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default=None,
    help="Logs on stderr: JSON lines, or text (auto: text on a terminal).",
)
@click.option(
    "--cluster",
    default=None,
    help="Join the cluster of this name (needs --store postgresql://…; ADR 0018).",
)
@click.option(
    "--gossip", default=None, help="HOST:PORT of the cluster's membership protocol (:7946)."
)
@click.option("--seeds", default=None, help="HOST:PORT,… of other nodes' --gossip to join.")
@click.option("--node-id", default=None, help="This node's id (default: the data directory's).")
@click.option(
    "--cluster-key",
    envvar="CAXTON_CLUSTER_KEY",
    default=None,
    help="Base64 32-byte key encrypting the membership protocol (needed off loopback).",
)
@click.option(
    "--lease", "lease_s", default=None, help="Seconds a shard's lease lasts unless renewed (10)."
)
@click.option(
    "--tls-cert",
    default=None,
    metavar="FILE",
    help="PEM certificate: gRPC, metrics and health serve TLS with it (needs --tls-key).",
)
@click.option("--tls-key", default=None, metavar="FILE", help="The certificate's PEM private key.")
@click.option(
    "--tls-client-ca",
    default=None,
    metavar="FILE",
    help="PEM CA: API clients must present a certificate it signed (mutual TLS).",
)
def start(
    data_dir: Path | None,
    listen: str | None,
    config_path: Path | None,
    store: str | None,
    token: str | None,
    synchronous: str | None,
    log_level: str,
    metrics: str | None,
    health: str | None,
    rest: str | None,
    traces: str | None,
    otlp_endpoint: str | None,
    trace_sampling: str | None,
    log_format: str | None,
    cluster: str | None,
    gossip: str | None,
    seeds: str | None,
    node_id: str | None,
    cluster_key: str | None,
    lease_s: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
) -> None:
    """Start a server in the foreground; Ctrl-C stops it cleanly."""
    from caxton.shell.cluster import GossipError
    from caxton.shell.config import ConfigError, load_config
    from caxton.shell.datadir import DataDirBusy, DataDirUnusable
    from caxton.shell.server import ListenFailed, NodeDeposed, serve
    from caxton.shell.store import StoreError
    from caxton.shell.telemetry.http import EndpointUnavailable
    from caxton.shell.telemetry.logs import configure_logging
    from caxton.shell.tls import TlsUnusable
    from caxton.shell.wasm import WasmError

    try:
        config = load_config(
            config_path,
            data_dir=data_dir,
            listen=listen,
            store=store,
            token=token,
            synchronous=synchronous,
            metrics=metrics,
            health=health,
            rest=rest,
            traces=traces,
            otlp_endpoint=otlp_endpoint,
            trace_sampling=trace_sampling,
            log_format=log_format,
            cluster=cluster,
            gossip=gossip,
            seeds=seeds,
            node_id=node_id,
            cluster_key=cluster_key,
            lease_s=lease_s,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
        )
    except ConfigError as exc:
        raise Failure(str(exc), code=2) from None
    configure_logging(log_level, config.log_format)  # type: ignore[arg-type]
    try:
        asyncio.run(
            serve(
                config,
                announce=lambda text: out.print(text, markup=False),
                warn=lambda text: err.print(text, markup=False),
            )
        )
    except (
        DataDirBusy,
        DataDirUnusable,
        ListenFailed,
        NodeDeposed,
        EndpointUnavailable,
        StoreError,
        WasmError,
        GossipError,
        TlsUnusable,
    ) as exc:
        raise Failure(str(exc)) from None
