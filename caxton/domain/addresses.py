"""A server's address as people write it (`HOST:PORT`, `http://…`, `https://HOST[:PORT]`),
and whether a host is this machine's loopback."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from caxton.domain.errors import quoted

DEFAULT_PORT = 50051
"""The port of an `http://` or `https://` address that names none: Caxton's gRPC port."""

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class ServerAddress:
    host: str
    """A name or an IP address; an IPv6 address without its brackets."""
    port: int
    tls: bool
    """`https://`: the connection is TLS; plain `HOST:PORT` and `http://` are not."""

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"https://{self.host_port}" if self.tls else self.host_port


def parse_server_address(text: str) -> ServerAddress:
    """`127.0.0.1:50051`, `http://host:50051` (plain) or `https://host[:port]` (TLS).
    Raises ValueError saying which forms are accepted."""
    written = text.strip()
    if "://" not in written:
        return ServerAddress(*_host_port(written, text), tls=False)
    scheme = written.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"{quoted(text)}: the scheme must be https:// (TLS) or http:// (plain), "
            "or none (plain HOST:PORT)"
        )
    try:
        parts = urlsplit(written)
        port = parts.port
    except ValueError:
        raise ValueError(f"{quoted(text)} is not {_FORMS}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{quoted(text)} is not {_FORMS}")
    if parts.username is not None:
        raise ValueError(f"{quoted(text)}: give a token with --token, not in the address")
    if port == 0:
        raise ValueError(f"{quoted(text)}: port 0 is not a server's port")
    return ServerAddress(parts.hostname, port or DEFAULT_PORT, tls=scheme == "https")


_FORMS = "HOST:PORT, http://HOST:PORT or https://HOST[:PORT] (for example 127.0.0.1:50051)"


def _host_port(written: str, text: str) -> tuple[str, int]:
    host, sep, port = written.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{quoted(text)} is not {_FORMS}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` can only be reached from this machine (127.0.0.0/8, ::1, localhost).
    A wildcard (0.0.0.0, ::) or any other name or address can be reached from outside."""
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False
