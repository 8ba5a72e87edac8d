"""Messages from API clients: acceptance with idempotent retries, and waiting for replies.

A client may retry a send with the same message id: what was accepted in the last two
minutes (`RETRY_WINDOW_MS`, also across a restart) is answered from memory instead of
being accepted twice. A client may wait for the final reply in its conversation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from caxton.domain.acl import AclMessage, from_client
from caxton.domain.events import MessageSent, Recorded
from caxton.domain.frozen import positional
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
    accepted_before: bool = field(default=False, compare=False)
    """A retry of an id accepted before: nothing sent again, no reply waited for (the same
    acceptance: it compares equal to the first answer)."""


_Decided = dict[str, "SendResult | BaseException"]
_Acceptance = SendResult | asyncio.Future[_Decided]
"""What a retry of an id finds: the result, or (while it commits) the future of its batch."""
_Waiter = asyncio.Future[AclMessage | None]


class ClientSends:
    """Accepts clients' messages through `accept` (the node's batch) and routes final
    replies to whoever waits for them (`reply`, an effect of the node's commits)."""

    def __init__(
        self, clock: Clock, accept: Callable[[Sequence[Accept]], asyncio.Future[list[Outcome]]]
    ) -> None:
        self._clock = clock
        self._accept = accept
        # client message id -> (when accepted, its result, or its batch's while committing)
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
        known = await self._known(message.id) if message.id in self._accepted else None
        if known is not None:
            return replace(known, reply=None, accepted_before=True)
        item = _accept(message)
        message = item.message
        waiter: _Waiter | None = None
        if wait_ms > 0:  # before the commit, so that no reply can come first
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(message.sender, []).append((message.conversation_id, waiter))
        try:
            (result,) = await self._commit([item])
            if isinstance(result, MailboxFull):
                raise result
        except BaseException:
            if waiter is not None:
                self._forget(message.sender, waiter)
            raise
        if waiter is None:
            return result
        # a timer that answers None, not asyncio.wait_for: no second future and callback
        timer = asyncio.get_running_loop().call_later(wait_ms / 1000, _no_reply, waiter)
        try:
            reply = await waiter
        finally:
            timer.cancel()
            self._forget(message.sender, waiter)
        return SendResult(
            result.message_id, result.conversation_id, result.deliveries, result.dead_letters, reply
        )

    async def send_many(self, messages: Sequence[AclMessage]) -> list[SendResult | Exception]:
        """Accepts one-way messages together: one batch and one wait for all of them, no
        task or future each. Each result is the message's `SendResult`, or the error that
        refused it (an invalid message, a full mailbox): one refused refuses no other.
        Ids accepted before are answered as `send` answers them; an id twice in the batch
        is accepted once."""
        self._trim()
        earlier: list[str] = []  # ids seen before: answered after this batch is on its way
        items: dict[str, Accept] = {}
        results: list[SendResult | Exception | _Later] = []
        accepted = self._accepted
        for message in messages:
            if message.id in accepted:
                earlier.append(message.id)
            elif message.id not in items:
                try:
                    item = _accept(message)
                except Exception as exc:  # this message only
                    results.append(exc)
                    continue
                items[item.message.id] = item
                message = item.message
            results.append(_Later(message.id))
        # taken before any wait: a retry of these ids from now on waits for this batch
        committing = self._commit(list(items.values())) if items else None
        decided = await committing if committing is not None else []
        by_id: dict[str, SendResult | Exception] = dict(zip(items, decided, strict=True))
        for message_id in earlier:
            try:
                known = await self._known(message_id)
            except Exception as exc:
                by_id[message_id] = exc
            else:
                assert known is not None
                by_id[message_id] = known
        return [by_id[r.message_id] if isinstance(r, _Later) else r for r in results]

    async def _known(self, message_id: str) -> SendResult | None:
        """The result of an id accepted in the retry window (raises what refused it if it
        was refused while this retry waited)."""
        known = self._accepted.get(message_id) if message_id else None
        if known is None:
            return None
        earlier = known[1]
        if isinstance(earlier, SendResult):
            return earlier
        outcome = (await asyncio.shield(earlier))[message_id]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _commit(self, items: Sequence[Accept]) -> asyncio.Future[list[SendResult | MailboxFull]]:
        """Accepts `items` in one batch; each one's result, or MailboxFull. The ids are
        remembered before this returns, so a retry while they commit waits for their
        result; a caller that stops waiting does not stop the batch, and its outcome is
        still remembered (a retry after a cancelled send is answered, not accepted again)."""
        now = self._clock.now_ms()
        loop = asyncio.get_running_loop()
        batch: asyncio.Future[_Decided] = loop.create_future()
        for item in items:
            self._accepted[item.message.id] = (now, batch)
        results: asyncio.Future[list[SendResult | MailboxFull]] = loop.create_future()

        def settled(accepting: asyncio.Future[list[Outcome]]) -> None:
            if accepting.cancelled() or accepting.exception() is not None:
                error = asyncio.CancelledError() if accepting.cancelled() else accepting.exception()
                assert error is not None
                for item in items:
                    self._accepted.pop(item.message.id, None)  # not accepted: retries may try
                for future in (batch, results):
                    if not future.done():
                        future.set_exception(error)
                        future.exception()  # retrieved: whoever awaited it got it
                return
            decided = self._remember(items, accepting.result(), now)
            batch.set_result({i.message.id: r for i, r in zip(items, decided, strict=True)})
            if not results.done():
                results.set_result(decided)

        try:
            accepting = self._accept(items)
        except BaseException:  # the node stops, or refuses work: nothing was taken
            for item in items:
                self._accepted.pop(item.message.id, None)
            batch.cancel()
            raise
        accepting.add_done_callback(settled)
        return results

    def _remember(
        self, items: Sequence[Accept], outcomes: Sequence[Outcome], now: int
    ) -> list[SendResult | MailboxFull]:
        decided: list[SendResult | MailboxFull] = []
        for item, outcome in zip(items, outcomes, strict=True):
            m = item.message
            if isinstance(outcome, MailboxRefused):
                self._accepted.pop(m.id, None)
                decided.append(MailboxFull(outcome.instance, outcome.size))
            else:
                assert isinstance(outcome, Accepted)
                result = _result(
                    m.id, m.conversation_id, outcome.deliveries, outcome.dead_letters, None, False
                )
                self._accepted[m.id] = (now, result)
                decided.append(result)
        return decided

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


# SendResult(...) without its frozen __init__: one per message accepted
_result: Callable[..., SendResult] = positional(SendResult)


@dataclass(frozen=True, slots=True)
class _Later:
    """A place in `send_many`'s results for a message still to be committed."""

    message_id: str


def _no_reply(waiter: _Waiter) -> None:
    """The wait for a reply ran out: the send answers without one."""
    if not waiter.done():
        waiter.set_result(None)


def _accept(message: AclMessage) -> Accept:
    """A client's message with the fields the server owns filled in; a conversation id
    made here at random names a stream the log cannot hold yet."""
    new_conversation = not message.conversation_id
    message = stamped(
        from_client(
            message,
            id=message.id or fresh_id(),
            sender=message.sender or client_address(),
            conversation_id=message.conversation_id or fresh_id(),
        )
    )
    return Accept(message, new_conversation)
