"""Reading back the JSON-lines export (`caxton.events/1`, written by `export.jsonl_lines`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from caxton.domain import schema
from caxton.domain.events import Recorded
from caxton.replay.export import JSONL_SCHEMA

_KEYS = ("type", "data", "position", "stream", "version", "at_ms")


class NotAnExport(ValueError):
    """A line that is not an event of `caxton events export --format jsonl`; says which and why."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line


def read_jsonl(lines: Iterable[bytes]) -> Iterator[Recorded]:
    """The recorded events of an export, line by line (blank lines skipped)."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _recorded(number, line)


def _recorded(number: int, line: bytes) -> Recorded:
    try:
        obj: Any = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise NotAnExport(number, f"not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise NotAnExport(number, "not a JSON object")
    if obj.get("schema") != JSONL_SCHEMA:
        raise NotAnExport(
            number, f"schema {obj.get('schema')!r}, not {JSONL_SCHEMA!r} (an event export)"
        )
    missing = [key for key in _KEYS if key not in obj]
    if missing:
        raise NotAnExport(number, f"no {', '.join(map(repr, missing))} key")
    try:
        event = schema.decode(obj["type"], obj["data"])
        return Recorded(
            position=_int(obj["position"]),
            stream=str(obj["stream"]),
            version=_int(obj["version"]),
            at=_int(obj["at_ms"]),
            event=event,
            traceparent=str(obj.get("traceparent", "")),
            node=str(obj.get("node", "")),
        )
    except schema.UnknownEventType as e:
        raise NotAnExport(number, f"{e} (exported by a newer Caxton?)") from None
    except KeyError as e:
        raise NotAnExport(number, f"a {obj['type']} without its {e}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise NotAnExport(number, f"a {obj['type']} that does not decode ({e})") from None


def _int(value: object) -> int:
    if type(value) is not int:
        raise ValueError(f"{value!r} is not an integer")
    return value
