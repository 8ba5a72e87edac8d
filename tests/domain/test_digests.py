"""A component digest is stored as bare hex and shown as `sha256:<hex>`; either form is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caxton.domain.digests import shown, stored
from caxton.domain.errors import InvalidDigest

hex_digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(hex_digests)
def test_either_form_reads_as_the_stored_hex_and_shows_as_sha256(digest: str) -> None:
    assert stored(digest) == stored(shown(digest)) == digest
    assert shown(digest) == shown(shown(digest)) == f"sha256:{digest}"


@given(st.text(max_size=200).filter(lambda t: len(t.removeprefix("sha256:")) != 64))
def test_anything_else_is_refused_and_a_long_one_is_not_quoted(text: str) -> None:
    with pytest.raises(InvalidDigest) as refused:
        stored(text)
    assert len(str(refused.value)) < 200
