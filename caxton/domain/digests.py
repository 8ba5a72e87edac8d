"""Component digests: the bare sha256 hex the log stores, `sha256:<hex>` as the API shows it."""

from __future__ import annotations

import re

from caxton.domain.errors import InvalidDigest, quoted

PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


def shown(digest: str) -> str:
    """`digest` in the one form the API returns: `sha256:` and 64 lowercase hex digits."""
    return digest if digest.startswith(PREFIX) else PREFIX + digest


def stored(digest: str) -> str:
    """The 64 hex digits the log and the component store use, from either form; raises
    `InvalidDigest` for anything else."""
    hex_digits = digest.removeprefix(PREFIX)
    if not _HEX.fullmatch(hex_digits):
        raise InvalidDigest(
            "expected 'sha256:' and 64 lowercase hex digits, or the digits alone; "
            f"got {quoted(digest)}"
        )
    return hex_digits
