"""The writer's bounded memory of stream versions: the most recently written kept, the
others asked of the log, all of a batch's in one question."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from caxton.shell.store.versions import RecentVersions


class FakeLog:
    def __init__(self, versions: dict[str, int]) -> None:
        self.versions = versions
        self.asked: list[list[str]] = []

    def last_versions(self, streams: Collection[str]) -> dict[str, int]:
        self.asked.append(list(streams))
        return {s: self.versions[s] for s in streams if s in self.versions}


def test_streams_not_kept_are_asked_of_the_log_in_one_question() -> None:
    log = FakeLog({"a": 4, "b": 1})
    versions = RecentVersions(log.last_versions, capacity=10)

    assert versions.last(["a", "new", "b", "a"]) == {"a": 4, "new": 0, "b": 1}
    assert log.asked == [["a", "new", "b"]]


def test_written_streams_are_answered_without_the_log() -> None:
    log = FakeLog({})
    versions = RecentVersions(log.last_versions, capacity=10)
    versions.written({"a": 3, "b": 1})

    assert versions.last(["b", "a"]) == {"b": 1, "a": 3}
    assert log.asked == []


def test_the_least_recently_written_are_forgotten_beyond_the_capacity() -> None:
    log = FakeLog({"a": 7, "b": 2, "c": 5})
    versions = RecentVersions(log.last_versions, capacity=2)
    versions.written({"a": 7, "b": 2})
    versions.written({"a": 7})  # a is now the more recent
    versions.written({"c": 5})

    assert len(versions) == 2
    assert versions.last(["a", "c"]) == {"a": 7, "c": 5}
    assert log.asked == []
    assert versions.last(["b"]) == {"b": 2}
    assert log.asked == [["b"]]


def test_forgetting_sends_every_stream_to_the_log_again() -> None:
    log = FakeLog({"a": 9})
    versions = RecentVersions(log.last_versions, capacity=2)
    versions.written({"a": 1})  # stale: another writer has since gone on
    versions.forget()

    assert versions.last(["a"]) == {"a": 9}
    assert versions.lookups == 1


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecentVersions(FakeLog({}).last_versions, capacity=0)
