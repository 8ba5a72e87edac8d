"""Content checks that ask json's C scanner first: the same verdicts as strict_json's."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain import strict_json
from caxton.domain.acl import is_content, validate_content
from caxton.domain.errors import InvalidMessage, bounded


def verdict_of_strict_json(content: str, language: str, max_bytes: int) -> str:
    """`validate_content` as it was: the size of the UTF-8 encoding, then strict_json."""
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return f"content: is not text: a lone surrogate at character {exc.start}"
    if size > max_bytes:
        return f"content: {size} bytes is over the limit of {max_bytes} bytes"
    if language == "json" and content:
        try:
            strict_json.loads(content)
        except ValueError as exc:
            return f"content: not valid JSON ({bounded(str(exc), 200)})"
    return ""


def verdict(content: str, language: str, max_bytes: int) -> str:
    try:
        validate_content(content, language, max_bytes)
    except InvalidMessage as exc:
        assert not is_content(content, language, max_bytes)
        return str(exc)
    assert is_content(content, language, max_bytes)
    return ""


strings = st.text(st.characters(codec="utf-8") | st.sampled_from('\ud800\udc00"\\'), max_size=5)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def contents(draw: st.DrawFn) -> str:
    """JSON text, often broken: cut, padded, followed by more, or not JSON at all."""
    text = json.dumps(
        draw(values),
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 1])),
    )
    cut = draw(st.integers(0, len(text)))
    return draw(
        st.sampled_from(
            [
                text,
                text,
                text[:cut],
                text[cut:],
                f" {text}",
                f"{text}\n",
                f"{text} {text}",
                f"{text}x",
                f"[{text},NaN]",
                "[" * 50 + text + "]" * 50,
            ]
        )
        | strings
    )


@settings(max_examples=1000, deadline=None)
@given(contents(), st.sampled_from(["json", "sl"]), st.sampled_from([4, 64, 1 << 20]))
def test_content_is_refused_for_the_same_reason_as_by_strict_json(
    content: str, language: str, max_bytes: int
) -> None:
    assert verdict(content, language, max_bytes) == verdict_of_strict_json(
        content, language, max_bytes
    )


def test_json_with_anything_after_it_is_not_json() -> None:
    for content in ("{} {}", "1 2", "{}x", "[]]", '"a" "b"', "{}\n\n1"):
        assert verdict(content, "json", 1024).startswith("content: not valid JSON (Extra data")
