"""The append-only event log: eventsourcing's recorders underneath, group commit on top."""

from caxton.shell.store.envelope import Pending
from caxton.shell.store.errors import AppendRejected, LogCorrupted, StoreError, StoreUnavailable
from caxton.shell.store.integrity import IntegrityReport
from caxton.shell.store.log import EventLog

__all__ = [
    "AppendRejected",
    "EventLog",
    "IntegrityReport",
    "LogCorrupted",
    "Pending",
    "StoreError",
    "StoreUnavailable",
]
