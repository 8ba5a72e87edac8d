"""A late reply is a violation where people read them: `caxton replay --print`'s story."""

from __future__ import annotations

from datetime import UTC, datetime

from caxton.replay.cursor import Cursor
from caxton.replay.recording import record
from caxton.replay.views import story
from tests.domain.domain_histories import Log, P

CNET = "fipa-contract-net"
REPLY_BY = int(datetime(2026, 12, 3, 13, 15, 5, tzinfo=UTC).timestamp() * 1000)


def test_a_propose_past_the_cfps_reply_by_is_printed_as_a_violation() -> None:
    log = Log(at=REPLY_BY - 2_554)
    log.send(P.CFP, "manager", "bidder-a", "bidder-b", protocol=CNET, reply_by=REPLY_BY)
    log.send(P.PROPOSE, "bidder-a", "manager", protocol=CNET, at=REPLY_BY - 500)
    log.send(P.PROPOSE, "bidder-b", "manager", protocol=CNET, at=REPLY_BY + 12_900)

    printed = story(Cursor.open(record("c1", log.recorded)).end())

    violations = printed.split("\nViolations\n", 1)[1]
    assert "propose from bidder-b 12.9 s after the cfp's reply-by 13:15:05.000" in violations
    assert "bidder-a" not in violations  # in time


def test_replies_in_time_print_no_violation() -> None:
    log = Log(at=REPLY_BY - 2_554)
    log.send(P.CFP, "manager", "bidder-a", protocol=CNET, reply_by=REPLY_BY)
    log.send(P.PROPOSE, "bidder-a", "manager", protocol=CNET, at=REPLY_BY)

    printed = story(Cursor.open(record("c1", log.recorded)).end())

    assert printed.split("\nViolations\n", 1)[1].startswith("  none")
