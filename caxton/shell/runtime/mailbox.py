"""An instance's mailbox: a bounded queue whose bound `caxton config set --mailbox` can change."""

from __future__ import annotations

import asyncio

from caxton.domain.acl import AclMessage


class Mailbox(asyncio.Queue[AclMessage | None]):
    """`asyncio.Queue` with a bound that can change while messages wait in it."""

    def resize(self, maxsize: int) -> None:
        """A smaller bound keeps what is queued and refuses new messages until it drains;
        a larger one lets waiting redeliveries in at once."""
        self._maxsize = maxsize  # asyncio.Queue reads it on every put
        while self._putters and not self.full():  # type: ignore[attr-defined]
            self._wakeup_next(self._putters)  # type: ignore[attr-defined]
