"""The append-only event log: eventsourcing's recorders underneath, group commit on top."""

from caxton.shell.store.backend import Lease
from caxton.shell.store.envelope import Pending
from caxton.shell.store.errors import (
    AppendRejected,
    ClaimRefused,
    LeaseLost,
    LogCorrupted,
    StoreError,
    StoreUnavailable,
)
from caxton.shell.store.integrity import IntegrityReport
from caxton.shell.store.log import EventLog
from caxton.shell.store.postgres import answering

__all__ = [
    "AppendRejected",
    "ClaimRefused",
    "EventLog",
    "IntegrityReport",
    "Lease",
    "LeaseLost",
    "LogCorrupted",
    "Pending",
    "StoreError",
    "StoreUnavailable",
    "answering",
]
