"""An order processor (fipa-request): books a well-formed order and returns its tracking number.

`request` {"order": {"items": ["book", "pen"]}} is answered with `inform`
{"tracking_number": "TRK-…", "items": 2, "at": <ms>}; a malformed order with `refuse`;
any other performative with `not-understood`.
"""

from __future__ import annotations

from caxton_agent import Agent, Message, log, now, random, reply


class OrderProcessor(Agent):
    def handle(self, message: Message) -> None:
        if message.performative != "request":
            reply(message, "not-understood", {"performative": message.performative})
            return
        order = message.body.get("order") if isinstance(message.body, dict) else None
        items = order.get("items") if isinstance(order, dict) else None
        if not isinstance(items, list) or not items:
            reply(message, "refuse", {"reason": "an order needs a non-empty 'items' list"})
            return
        tracking = f"TRK-{random():016X}"[:14]
        log.info(f"order of {len(items)} items booked as {tracking}")
        reply(message, "inform", {"tracking_number": tracking, "items": len(items), "at": now()})
