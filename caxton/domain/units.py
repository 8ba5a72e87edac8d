"""Durations (`200ms`, `5s`, `1h`) and sizes (`64MiB`, `512KiB`, `1GB`) as people write them."""

from __future__ import annotations

import re

from caxton.domain.errors import quoted

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$", re.IGNORECASE)
_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE_BYTES = {
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "kb": 1000,
    "m": 1 << 20,
    "mib": 1 << 20,
    "mb": 1000**2,
    "g": 1 << 30,
    "gib": 1 << 30,
    "gb": 1000**3,
}


def parse_duration_ms(text: str) -> int:
    """`5s` -> 5000. A bare number is seconds. Raises ValueError with the accepted forms."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{quoted(text)} is not a duration (examples: 200ms, 5s, 5m, 1h)")
    number, unit = match.groups()
    return round(float(number) * _DURATION_MS[unit or "s"])


def parse_size_bytes(text: str) -> int:
    """`64MiB` -> 67108864. A bare number is bytes. Raises ValueError with the accepted forms."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{quoted(text)} is not a size (examples: 512KiB, 64MiB, 1GiB)")
    number, unit = match.groups()
    return round(float(number) * _SIZE_BYTES[(unit or "b").lower()])


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{size}B"


def format_duration(ms: int) -> str:
    if ms % 1000 or ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"
