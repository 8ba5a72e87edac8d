"""Helpers shared by the test folders (and the benchmarks): WAT components, free ports,
a gRPC codec for raw payloads."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import wasmtime
from grpclib.encoding.base import CodecBase

COMPONENTS = Path(__file__).parent / "wasm" / "components"


def wat(name: str) -> bytes:
    """The binary of `tests/wasm/components/<name>.wat`."""
    return bytes(wasmtime.wat2wasm((COMPONENTS / f"{name}.wat").read_text()))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SteppedClock:
    """Wall-clock time that moves only when a test moves it (a node's `Clock`)."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.ms


class RawCodec(CodecBase):  # type: ignore[misc]
    """A grpclib codec that sends the bytes it is given, as they are, and returns the
    bytes it receives: for requests no well-behaved client would send."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> bytes:
        return data
