"""JSON as RFC 8259 has it, read from untrusted text: no NaN or Infinity, no stack overflow."""

from __future__ import annotations

import json
from typing import Any


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
"""Made once: `json.loads` with any option builds a decoder at every call."""


def loads(text: str | bytes) -> Any:
    """The value of `text`; raises ValueError saying why it is not JSON that can be read."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
