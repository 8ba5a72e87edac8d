"""Replay shows and compares JSON content nested deeper than Python reads: as text."""

from __future__ import annotations

from caxton.domain.acl import AclMessage, Performative
from caxton.replay.reexec import compare, side_by_side
from caxton.replay.views import pretty

# deeper than any stack reads; the server takes a few hundred levels less, but the replay
# TUI reads what it took far deeper in its own stack
DEEP = "[" * 100_000 + "]" * 100_000


def message(content: str) -> AclMessage:
    return AclMessage(
        id="m", performative=Performative.INFORM, sender="a", receivers=("b",), content=content
    )


def test_content_too_deep_to_indent_is_shown_as_it_is() -> None:
    assert pretty(DEEP) == DEEP


def test_content_too_deep_to_read_is_compared_as_text() -> None:
    same, changed = compare([message(DEEP), message(DEEP)], [message(DEEP), message("[]")])

    assert (same.verdict, changed.verdict) == ("same", "different")
    assert changed.differences == ("content",)
    assert side_by_side(changed)
