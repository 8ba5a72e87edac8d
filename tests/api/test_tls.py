"""TLS contexts from files, and the warning for an exposed server: what each unusable file
says, without a server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from caxton.shell.config import ConfigError, ServerConfig, load_config
from caxton.shell.tls import (
    HTTP1,
    HTTP2,
    TlsUnusable,
    client_context,
    exposure_warning,
    server_context,
)
from tests.certificates import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _config(pki: Pki, **changes: str) -> ServerConfig:
    files = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    return ServerConfig(**{**files, **changes})


def test_a_server_without_a_certificate_serves_plain() -> None:
    assert server_context(ServerConfig(), alpn=HTTP2) is None


def test_with_a_client_ca_the_api_requires_client_certificates_and_the_probes_do_not(
    pki: Pki,
) -> None:
    mutual = _config(pki, tls_client_ca=str(pki.ca))
    api = server_context(mutual, alpn=HTTP2)
    probes = server_context(mutual, alpn=HTTP1, verify_clients=False)
    assert api is not None and probes is not None
    assert api.verify_mode == ssl.CERT_REQUIRED
    assert probes.verify_mode == ssl.CERT_NONE


def test_an_encrypted_key_is_refused_with_how_to_decrypt_it(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(TlsUnusable, match=r"encrypted with a passphrase.*openssl pkey"):
        server_context(_config(pki, tls_key=str(encrypted)), alpn=HTTP2)


def test_a_client_ca_that_is_not_a_certificate_is_named(pki: Pki) -> None:
    with pytest.raises(TlsUnusable, match=r"--tls-client-ca .*server\.key: not a PEM certificate"):
        server_context(_config(pki, tls_client_ca=str(pki.server_key)), alpn=HTTP2)


def test_a_client_key_without_its_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(TlsUnusable, match="give the client certificate with it"):
        client_context(key=str(pki.client_key))


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TlsUnusable, match=r"CA file .*nothing\.pem: cannot read"):
        client_context(ca=str(tmp_path / "nothing.pem"))


def test_a_reachable_listener_is_warned_of_unless_it_has_tls_and_access_control() -> None:
    api = {"gRPC API": "0.0.0.0:50051"}
    said = exposure_warning(api, tls=False, token=False)
    assert said.startswith("⚠ WARNING: the gRPC API on 0.0.0.0:50051 can be reached")
    assert "--token" in said and "--tls-cert FILE --tls-key FILE" in said
    assert "no access control" in exposure_warning(api, tls=True, token=False)
    assert "token crosses the network in clear text" in exposure_warning(api, tls=False, token=True)
    assert exposure_warning(api, tls=True, token=True) == ""
    assert exposure_warning(api, tls=True, token=False, client_certificates=True) == ""
    assert exposure_warning({"gRPC API": "127.0.0.1:50051"}, tls=False, token=False) == ""
    both = {"gRPC API": "0.0.0.0:50051", "REST gateway": "10.0.0.7:8080", "other": "off"}
    assert "the gRPC API on 0.0.0.0:50051 and the REST gateway on 10.0.0.7:8080 can" in (
        exposure_warning(both, tls=False, token=False)
    )


def test_the_configuration_file_names_the_files_and_a_half_pair_is_refused(
    pki: Pki, tmp_path: Path
) -> None:
    toml = tmp_path / "caxton.toml"
    toml.write_text(
        f'[server]\ntls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
        f'tls_client_ca = "{pki.ca}"\n'
    )
    config = load_config(toml)
    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == (
        str(pki.server_cert),
        str(pki.server_key),
        str(pki.ca),
    )
    with pytest.raises(ConfigError, match="give both --tls-cert FILE and --tls-key FILE"):
        load_config(None, tls_cert=str(pki.server_cert))
    with pytest.raises(ConfigError, match="mutual TLS needs the server's own --tls-cert"):
        load_config(None, tls_client_ca=str(pki.ca))
