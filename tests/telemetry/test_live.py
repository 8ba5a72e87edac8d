"""The live figures per agent stay bounded by time and count, whatever an agent handles."""

from __future__ import annotations

from caxton.domain.events import MessageHandled, Recorded
from caxton.shell.telemetry.live import WINDOW_MS, LiveStats


def handled(position: int, at: int, agent: str = "echo", conversation: str = "") -> Recorded:
    event = MessageHandled(
        message_id=f"m{position}",
        conversation_id=conversation or f"c{position}",
        agent=agent,
        replica=0,
        duration_us=1_000 + position,
    )
    return Recorded(position=position, stream="s", version=1, at=at, event=event)


def test_an_agent_keeps_its_last_window_of_handlings_and_a_few_more() -> None:
    stats = LiveStats()
    for i in range(5_000):  # a hundred a second for 50 s
        stats.observe(handled(i + 1, at=10 * i))
    now = 10 * 4_999

    kept = stats._agents["echo"].handled
    assert len(kept) == WINDOW_MS // 10 + 1  # the window's own, nothing older
    assert stats.rates("echo", now).messages_per_second == (WINDOW_MS // 10 + 1) / 5
    assert len(stats.conversations("echo")) == 16
    assert stats.conversations("echo")[0] == "c5000"


def test_a_quiet_agent_still_has_a_p99_from_its_last_handlings() -> None:
    stats = LiveStats()
    for i in range(200):  # one a minute
        stats.observe(handled(i + 1, at=60_000 * i))
    rates = stats.rates("echo", now_ms=60_000 * 300)

    assert len(stats._agents["echo"].handled) == 64
    assert rates.messages_per_second == 0
    assert rates.p99_handling_ms == 1.2  # of the last 64: durations 1,137 … 1,200 µs
