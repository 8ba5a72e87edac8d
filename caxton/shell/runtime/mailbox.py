"""An instance's mailbox: committed messages waiting for their handling, in log order."""

from __future__ import annotations

from collections import deque

from caxton.domain.acl import AclMessage


class Mailbox:
    """A queue with a bound that `caxton config set --mailbox` can change while messages
    wait in it. The bound refuses new deliveries; messages accepted before a restart are
    let in past it (`put(..., force=True)`): an accepted message is never dropped."""

    __slots__ = ("_items", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[AclMessage] = deque()
        self.maxsize = maxsize

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def __bool__(self) -> bool:
        return bool(self._items)

    def put(self, message: AclMessage, *, force: bool = False) -> bool:
        """Queues `message`; False when the mailbox is full (and not `force`)."""
        if not force and len(self._items) >= self.maxsize:
            return False
        self._items.append(message)
        return True

    def take(self) -> AclMessage:
        return self._items.popleft()

    def drain(self) -> list[AclMessage]:
        left = list(self._items)
        self._items.clear()
        return left

    def resize(self, maxsize: int) -> None:
        """A smaller bound keeps what is queued and refuses new messages until it drains."""
        self.maxsize = maxsize
