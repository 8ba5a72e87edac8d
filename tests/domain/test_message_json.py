"""`AclMessage.json()`: a reply's content as parsed JSON, as the Python client returns it."""

from __future__ import annotations

import pytest

from caxton.domain.acl import AclMessage, Performative


def message(content: str, language: str = "json") -> AclMessage:
    return AclMessage(
        id="m-1",
        performative=Performative.INFORM,
        sender="order-processor",
        receivers=("client:c",),
        content=content,
        language=language,
    )


def test_a_messages_content_reads_as_json() -> None:
    reply = message('{"tracking_number": "TRK-1", "items": 2}')
    assert reply.json()["tracking_number"] == "TRK-1"


def test_content_that_is_not_json_says_whose_it_was() -> None:
    with pytest.raises(ValueError, match=r"the content of inform m-1 from order-processor is not"):
        message("TRK-1", language="text").json()
    with pytest.raises(ValueError, match=r"language 'text'\): 'TRK-1'"):
        message("TRK-1", language="text").json()
    with pytest.raises(ValueError, match="NaN"):
        message('{"x": NaN}').json()
