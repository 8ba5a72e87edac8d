"""Server settings: defaults, then `caxton.toml`, then command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:50051"
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


_KEYS = {"data_dir", "listen", "store", "token", "synchronous"}


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
    env_token = os.environ.get("CAXTON_TOKEN", "")
    if env_token and not config.token:
        config = replace(config, token=env_token)
    config = _apply(config, {k: v for k, v in flags.items() if v not in (None, "")}, "flag")
    parse_host_port(config.listen)
    if config.synchronous.upper() not in {"NORMAL", "FULL"}:
        raise ConfigError("synchronous must be NORMAL or FULL")
    return config


def _apply(config: ServerConfig, values: dict[str, Any], origin: str) -> ServerConfig:
    for key, value in values.items():
        if key == "data_dir":
            value = Path(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{origin}: {key} must be a string")
        config = replace(config, **{key: value})
    return config
