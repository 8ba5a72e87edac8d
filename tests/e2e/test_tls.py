"""TLS on a real server: the CLI and the Python client over https://, metrics and health over
TLS, mutual TLS, clear failures for plain/TLS mix-ups and unusable files, and the warning
for a server any machine can reach with neither TLS nor a token."""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.shell.client import CaxtonClient, ServerUnavailable, Unauthenticated
from tests.certificates import Pki, make_pki
from tests.e2e.conftest import ServerProcess, caxton, free_port, write_component
from tests.support import wat

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _started(directory: Path, *extra: str) -> ServerProcess:
    return ServerProcess(directory / "data", f"127.0.0.1:{free_port()}").start(*extra)


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = _started(
        tmp_path_factory.mktemp("tls"),
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--metrics",
        f"127.0.0.1:{free_port()}",
        "--health",
        f"127.0.0.1:{free_port()}",
    )
    yield running
    running.kill()


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = _started(
        tmp_path_factory.mktemp("mtls"),
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
        "--health",
        f"127.0.0.1:{free_port()}",
    )
    yield running
    running.kill()


def _announced(server: ServerProcess, what: str) -> str:
    """The URL the server announced for `what` ("metrics", "health")."""
    line = next(x for x in server.lines if x.strip().startswith(f"{what}:"))
    return line.split(":", 1)[1].strip()


def _get(url: str, pki: Pki) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(pki.ca))
    with urllib.request.urlopen(url, timeout=30, context=context) as page:
        return page.status, page.read().decode()


def test_the_cli_deploys_and_sends_over_https(
    tls_server: ServerProcess, pki: Pki, tmp_path: Path
) -> None:
    https = f"https://{tls_server.address}"
    assert f"listening on {https} (TLS;" in "".join(tls_server.lines)
    trust = ("--server", https, "--ca", str(pki.ca))
    deployed = caxton(
        "agent", "deploy", str(write_component(tmp_path, "reply")), "--name", "echo", *trust
    )
    assert "✓ deployed echo" in deployed.stdout
    sent = caxton(
        "send",
        "--to",
        "echo",
        "--performative",
        "request",
        "--content",
        '{"order": 17}',
        "--wait",
        "5s",
        *trust,
    )
    assert "reply inform from echo" in sent.stdout
    listed = caxton("agent", "list", *trust)
    assert "echo" in listed.stdout


def test_the_python_client_invokes_over_https(tls_server: ServerProcess, pki: Pki) -> None:
    async def scenario() -> str:
        async with CaxtonClient(f"https://{tls_server.address}", ca=str(pki.ca)) as client:
            await client.deploy(wat("reply"), "py-echo")
            reply = await client.invoke("py-echo", {"order": 18})
            return reply.performative

    assert asyncio.run(scenario()) == "inform"

    async def untrusting() -> None:
        async with CaxtonClient(f"https://{tls_server.address}") as client:  # the system's CAs
            await client.agents()

    with pytest.raises(ServerUnavailable, match="is not trusted"):
        asyncio.run(untrusting())


def test_metrics_and_health_are_served_over_tls(tls_server: ServerProcess, pki: Pki) -> None:
    metrics = _announced(tls_server, "metrics")
    health = _announced(tls_server, "health")
    assert metrics.startswith("https://") and health.startswith("https://")
    status, page = _get(metrics, pki)
    assert status == 200 and "caxton_" in page
    assert _get(health, pki)[0] == 200
    assert _get(health.removesuffix("/health") + "/ready", pki)[0] == 200


def test_a_client_that_does_not_trust_the_certificate_is_told_to_give_the_ca(
    tls_server: ServerProcess, pki: Pki
) -> None:
    untrusting = caxton(
        "agent",
        "list",
        "--server",
        f"https://{tls_server.address}",
        "--ca",
        str(pki.stranger_ca),
        check=False,
    )
    assert untrusting.returncode == 1
    assert "is not trusted" in untrusting.stderr and "--ca FILE" in untrusting.stderr
    assert "Traceback" not in untrusting.stdout + untrusting.stderr


def test_a_plain_client_of_a_tls_server_is_told_to_use_https(tls_server: ServerProcess) -> None:
    plain = caxton("agent", "list", "--server", tls_server.address, check=False)
    assert plain.returncode == 1
    assert "as a TLS server does to a plain client" in plain.stderr
    assert f"write https://{tls_server.address}" in plain.stderr
    assert "Traceback" not in plain.stdout + plain.stderr


def test_an_https_client_of_a_plain_server_is_told_to_drop_https(
    server: ServerProcess, pki: Pki
) -> None:
    https = caxton(
        "agent", "list", "--server", f"https://{server.address}", "--ca", str(pki.ca), check=False
    )
    assert https.returncode == 1
    assert "does not serve TLS" in https.stderr and server.address in https.stderr
    assert "Traceback" not in https.stdout + https.stderr


def test_mutual_tls_refuses_a_client_without_a_certificate_and_accepts_one_with_it(
    mtls_server: ServerProcess, pki: Pki
) -> None:
    https = f"https://{mtls_server.address}"
    assert "(TLS with client certificates;" in "".join(mtls_server.lines)
    refused = caxton("agent", "list", "--server", https, "--ca", str(pki.ca), check=False)
    assert refused.returncode == 1
    assert "requires client certificates" in refused.stderr
    assert "--cert FILE --key FILE" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr

    accepted = caxton(
        "agent",
        "list",
        "--server",
        https,
        "--ca",
        str(pki.ca),
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
    )
    assert "no agents deployed" in accepted.stdout


def test_the_python_client_needs_a_client_certificate_under_mutual_tls(
    mtls_server: ServerProcess, pki: Pki
) -> None:
    https = f"https://{mtls_server.address}"

    async def without() -> None:
        async with CaxtonClient(https, ca=str(pki.ca)) as client:
            await client.agents()

    with pytest.raises(Unauthenticated, match="requires client certificates"):
        asyncio.run(without())

    async def with_one() -> int:
        async with CaxtonClient(
            https, ca=str(pki.ca), cert=str(pki.client_cert), key=str(pki.client_key)
        ) as client:
            return len(await client.agents())

    assert asyncio.run(with_one()) == 0


def test_health_needs_no_client_certificate_under_mutual_tls(
    mtls_server: ServerProcess, pki: Pki
) -> None:
    # a Kubernetes probe cannot present one; the token does not guard /health either
    assert _get(_announced(mtls_server, "health"), pki)[0] == 200


def test_a_server_on_every_interface_with_neither_tls_nor_token_warns_loudly(
    tmp_path: Path,
) -> None:
    exposed = ServerProcess(tmp_path / "data", f"0.0.0.0:{free_port()}").start()
    try:
        said = "".join(exposed.lines)
    finally:
        exposed.kill()
    assert "WARNING: the gRPC API on 0.0.0.0:" in said
    assert "can be reached from other machines" in said
    assert "--token" in said and "--tls-cert FILE --tls-key FILE" in said


def test_a_token_without_tls_is_warned_of_and_loopback_is_quiet(
    tmp_path: Path, server: ServerProcess
) -> None:
    with_token = ServerProcess(tmp_path / "token", f"0.0.0.0:{free_port()}").start(
        "--token", "s3cret"
    )
    try:
        said = "".join(with_token.lines)
    finally:
        with_token.kill()
    assert "WARNING" in said and "token crosses the network in clear text" in said
    assert "WARNING" not in "".join(server.lines)


@pytest.mark.parametrize(
    ("cert", "key", "said"),
    [
        ("missing.pem", "server_key", "--tls-cert {dir}/missing.pem: cannot read (No such file"),
        ("server_cert", "stranger_key", "is not the private key of --tls-cert"),
        ("server_key", "server_key", "not a PEM certificate"),
    ],
)
def test_an_unusable_certificate_or_key_stops_the_start_in_one_line(
    pki: Pki, tmp_path: Path, cert: str, key: str, said: str
) -> None:
    def path(name: str) -> str:
        found = getattr(pki, name, None)
        return str(found) if found is not None else str(pki.ca.parent / name)

    data = tmp_path / "data"
    started = caxton(
        "server",
        "start",
        "--data-dir",
        str(data),
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--metrics",
        "off",
        "--health",
        "off",
        "--tls-cert",
        path(cert),
        "--tls-key",
        path(key),
        check=False,
    )
    assert started.returncode == 1
    assert said.format(dir=pki.ca.parent) in started.stderr
    assert started.stderr.startswith("✗ ")
    assert "Traceback" not in started.stdout + started.stderr
    assert not data.exists()  # refused before the data directory was touched
