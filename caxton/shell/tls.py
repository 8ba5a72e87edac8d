"""TLS contexts: the server's, for every listener, from its settings; a client's from its files.

Every file is read here first, so a missing, unreadable, encrypted or mismatched one is a
`TlsUnusable` naming the file and what to do, never an OpenSSL traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path

from caxton.domain.addresses import is_loopback
from caxton.shell.config import OFF, ServerConfig, parse_host_port

HTTP2 = ("h2",)
"""ALPN of the gRPC API (HTTP/2 only)."""
HTTP1 = ("http/1.1",)
"""ALPN of the HTTP/1.1 listeners: metrics, health (and a REST gateway on HTTP/1.1)."""

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_KEY = b"PRIVATE KEY-----"
_ENCRYPTED = (b"ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")


class TlsUnusable(Exception):
    """A certificate, key or CA file that cannot be used; the message names it and why."""


def server_context(
    config: ServerConfig, *, alpn: Sequence[str], verify_clients: bool = True
) -> ssl.SSLContext | None:
    """The context a listener serves TLS with, or None when the server has no certificate.

    With `tls_client_ca` and `verify_clients`, a client must present a certificate signed
    by that CA (mutual TLS). The API listeners verify clients; `/metrics` and `/health`
    pass `verify_clients=False`, as the token does not guard them either (a Kubernetes
    probe cannot present a certificate). Raises TlsUnusable.
    """
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    _load_pair(context, config.tls_cert, config.tls_key, "--tls-cert", "--tls-key")
    if config.tls_client_ca and verify_clients:
        _load_ca(context, config.tls_client_ca, "--tls-client-ca")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(*, ca: str = "", cert: str = "", key: str = "") -> ssl.SSLContext:
    """The context a client connects with: the server's certificate checked against `ca`
    (the system's CAs without one) and its host name; `cert` and `key` present a client
    certificate for mutual TLS (`key` may be left out when `cert` holds both). Raises
    TlsUnusable."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(HTTP2))
    if ca:
        _load_ca(context, ca, "CA file")
    if key and not cert:
        raise TlsUnusable(f"client key {key}: give the client certificate with it (--cert FILE)")
    if cert:
        _load_pair(context, cert, key or cert, "client certificate", "client key")
    return context


def exposure_warning(
    listeners: Mapping[str, str], *, tls: bool, token: bool, client_certificates: bool = False
) -> str:
    """One paragraph for stderr when a listener (`{"gRPC API": "0.0.0.0:50051"}`; an
    address `off` is none) can be reached from other machines without access control
    (neither a token nor client certificates: TLS alone lets anyone in), or with a token
    sent in clear text; "" otherwise."""
    guarded = token or client_certificates
    if tls and guarded:
        return ""
    exposed = [
        f"the {what} on {address}"
        for what, address in listeners.items()
        if address != OFF and not is_loopback(parse_host_port(address)[0])
    ]
    if not exposed:
        return ""
    if guarded:  # a token without TLS
        return (
            f"⚠ WARNING: {_listing(exposed)} can be reached from other machines without "
            "TLS: the token crosses the network in clear text, where anyone on the path can "
            "read it and use it. Encrypt with --tls-cert FILE --tls-key FILE (see the "
            "README's TLS section), or listen on 127.0.0.1."
        )
    if tls:
        return (
            f"⚠ WARNING: {_listing(exposed)} can be reached from other machines with TLS "
            "but no access control: anyone who can connect can deploy and run agents, send "
            "messages as any client, stop and remove agents and read the whole event log. "
            "Require a token with --token (or CAXTON_TOKEN), or client certificates with "
            "--tls-client-ca FILE."
        )
    return (
        f"⚠ WARNING: {_listing(exposed)} can be reached from other machines, with "
        "neither TLS nor a token. Anyone who can connect can deploy and run agents, send "
        "messages as any client, stop and remove agents and read the whole event log, and "
        "everything crosses the network in clear text. Require a token with --token "
        "(or CAXTON_TOKEN) and encrypt with --tls-cert FILE --tls-key FILE "
        "(see the README's TLS section), or listen on 127.0.0.1."
    )


def _listing(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join(filter(None, (", ".join(items[:-1]), items[-1])))


def _load_pair(context: ssl.SSLContext, cert: str, key: str, cert_is: str, key_is: str) -> None:
    if _CERTIFICATE not in _read(cert, cert_is):
        raise TlsUnusable(f"{cert_is} {cert}: not a PEM certificate (no {_CERTIFICATE.decode()})")
    key_text = _read(key, key_is)
    if any(mark in key_text for mark in _ENCRYPTED):
        raise TlsUnusable(
            f"{key_is} {key}: the key is encrypted with a passphrase, which Caxton does not "
            f"ask for; write it decrypted (openssl pkey -in {key} -out plain.key) and keep "
            "that file readable by this user only"
        )
    if _KEY not in key_text:
        raise TlsUnusable(f"{key_is} {key}: not a PEM private key (no ...{_KEY.decode()})")
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsUnusable(
                f"{key_is} {key} is not the private key of {cert_is} {cert}: "
                "give the key the certificate was made for"
            ) from None
        raise TlsUnusable(f"{cert_is} {cert} with {key_is} {key}: {_reason(exc)}") from None


def _load_ca(context: ssl.SSLContext, ca: str, ca_is: str) -> None:
    if _CERTIFICATE not in _read(ca, ca_is):
        raise TlsUnusable(f"{ca_is} {ca}: not a PEM certificate (no {_CERTIFICATE.decode()})")
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise TlsUnusable(f"{ca_is} {ca}: {_reason(exc)}") from None


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsUnusable(f"{what} {path}: cannot read ({exc.strerror})") from None


def _no_passphrase() -> bytes:
    raise TlsUnusable("the private key needs a passphrase")


def _reason(exc: ssl.SSLError) -> str:
    return f"{exc.reason or exc.strerror or exc} (OpenSSL {exc.library or 'error'})"


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
"""The client's connection preface and an empty SETTINGS frame: an HTTP/2 server answers."""

DROPPED_SILENTLY = "DROPPED_SILENTLY"


async def why_dropped(
    host: str, port: int, context: ssl.SSLContext | None, *, within_s: float = 10.0
) -> str:
    """Why a server dropped a connection, asked on a connection of its own that says the
    HTTP/2 preface: the OpenSSL reason of a failed handshake; DROPPED_SILENTLY when the
    server closed without a byte of HTTP/2 back; "" when it answers (or cannot be reached).

    The gRPC library reports each case only as "Connection lost". A TLS server drops a
    plain client so; under TLS 1.3 it refuses a client certificate after the handshake,
    and asyncio closes without sending the alert that would say so."""
    writer = None
    connected = False
    try:
        async with asyncio.timeout(within_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            connected = True
            writer.write(_HTTP2_PREFACE)
            await writer.drain()
            answer = await reader.read(1)
    except ssl.SSLError as exc:
        return str(exc.reason or exc)
    except (ConnectionResetError, BrokenPipeError):
        # after a handshake, a reset is the server hanging up on us (a refused client
        # certificate under TLS 1.3 on a busy machine); before it, nothing to say
        return DROPPED_SILENTLY if connected else ""
    except (OSError, TimeoutError):
        return ""
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return "" if answer else DROPPED_SILENTLY
