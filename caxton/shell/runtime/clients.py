"""Messages from API clients: acceptance with idempotent retries, and waiting for replies.

A client may retry a send with the same message id: what was accepted in the last two
minutes (`RETRY_WINDOW_MS`, also across a restart) is answered from memory instead of
being accepted twice. A client may wait for the final reply in its conversation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from caxton.domain.acl import AclMessage, from_client
from caxton.domain.events import MessageSent, Recorded
from caxton.domain.handling import Accept, Accepted, MailboxRefused, Outcome
from caxton.domain.tracing import stamped
from caxton.shell.runtime.clock import Clock, client_address, fresh_id
from caxton.shell.runtime.errors import MailboxFull

RETRY_WINDOW_MS = 120_000
ACCEPTED_MEMORY = 50_000
"""At most this many accepted ids are remembered for retries."""


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    conversation_id: str
    deliveries: tuple[str, ...]
    dead_letters: tuple[tuple[str, str], ...]
    reply: AclMessage | None = None


_Acceptance = SendResult | asyncio.Future[SendResult]
_Waiter = asyncio.Future[AclMessage | None]


class ClientSends:
    """Accepts clients' messages through `accept` (the node's batch) and routes final
    replies to whoever waits for them (`reply`, an effect of the node's commits)."""

    def __init__(self, clock: Clock, accept: Callable[[Accept], asyncio.Future[Outcome]]) -> None:
        self._clock = clock
        self._accept = accept
        # client message id -> (when accepted, its result, or a future while committing)
        self._accepted: OrderedDict[str, tuple[int, _Acceptance]] = OrderedDict()
        # client address -> [(conversation id, future)]
        self._waiters: dict[str, list[tuple[str, _Waiter]]] = {}

    def recall(self, recent: Iterable[Recorded]) -> None:
        """Remembers the clients' messages of the log's last minutes (at start-up)."""
        for recorded in recent:
            event = recorded.event
            assert isinstance(event, MessageSent)
            m = event.message
            result = SendResult(m.id, m.conversation_id, event.deliveries, ())
            self._accepted[m.id] = (recorded.at, result)
        self._trim()

    async def send(self, message: AclMessage, *, wait_ms: int = 0) -> SendResult:
        """Accepts a message; with `wait_ms`, waits that long for the final reply."""
        self._trim()
        known = self._accepted.get(message.id) if message.id else None
        if known is not None:
            earlier = known[1]
            return earlier if isinstance(earlier, SendResult) else await asyncio.shield(earlier)
        # a conversation id made here at random names a stream the log cannot hold yet
        new_conversation = not message.conversation_id
        message = stamped(
            from_client(
                message,
                id=message.id or fresh_id(),
                sender=message.sender or client_address(),
                conversation_id=message.conversation_id or fresh_id(),
            )
        )
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[SendResult] = loop.create_future()
        accepted_at = self._clock.now_ms()
        self._accepted[message.id] = (accepted_at, accepted)
        waiter: _Waiter | None = None
        if wait_ms > 0:  # before the commit, so that no reply can come first
            waiter = loop.create_future()
            self._waiters.setdefault(message.sender, []).append((message.conversation_id, waiter))
        try:
            outcome = await self._accept(Accept(message, new_conversation))
            if isinstance(outcome, MailboxRefused):
                raise MailboxFull(outcome.instance, outcome.size)
            assert isinstance(outcome, Accepted)
        except BaseException as exc:
            self._accepted.pop(message.id, None)  # not accepted: a retry may try again
            if waiter is not None:
                self._forget(message.sender, waiter)
            accepted.set_exception(exc)
            accepted.exception()  # retrieved: whoever awaited it got it
            raise
        result = SendResult(
            message.id, message.conversation_id, outcome.deliveries, outcome.dead_letters
        )
        accepted.set_result(result)  # for a retry that came while this one was committing
        self._accepted[message.id] = (accepted_at, result)
        if waiter is None:
            return result
        # a timer that answers None, not asyncio.wait_for: no second future and callback
        timer = loop.call_later(wait_ms / 1000, _no_reply, waiter)
        try:
            reply = await waiter
        finally:
            timer.cancel()
            self._forget(message.sender, waiter)
        return SendResult(
            result.message_id, result.conversation_id, result.deliveries, result.dead_letters, reply
        )

    def reply(self, client: str, message: AclMessage) -> None:
        """A committed final reply to `client`: answers whoever waits in its conversation."""
        for conversation, future in self._waiters.get(client, ()):
            if conversation == message.conversation_id and not future.done():
                future.set_result(message)

    def cancel_waits(self) -> None:
        """The node stops: nobody gets a reply any more."""
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.cancel()

    def _forget(self, client: str, future: _Waiter) -> None:
        waiters = [w for w in self._waiters.get(client, []) if w[1] is not future]
        if waiters:
            self._waiters[client] = waiters
        else:
            self._waiters.pop(client, None)

    def _trim(self) -> None:
        """Forgets ids accepted before the retry window, and the oldest beyond the cap."""
        oldest = self._clock.now_ms() - RETRY_WINDOW_MS
        accepted = self._accepted
        while accepted and (
            len(accepted) > ACCEPTED_MEMORY or next(iter(accepted.values()))[0] < oldest
        ):
            accepted.popitem(last=False)


def _no_reply(waiter: _Waiter) -> None:
    """The wait for a reply ran out: the send answers without one."""
    if not waiter.done():
        waiter.set_result(None)
