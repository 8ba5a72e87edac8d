"""The order desk of the 3 AM test: asks `inventory` about each order, in the same
conversation, and passes its answer back to whoever asked.

Its bug, on purpose: a `failure` from the platform (inventory trapped) is not passed on,
so the customer waits past the reply-by with no answer: a stalled conversation.
"""

from __future__ import annotations

from typing import Any

from caxton_agent import Agent, Message, log, reply, send


class OrderDesk(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.inventory = str(config.get("inventory", "inventory"))
        self.asked: dict[str, Message] = {}

    def handle(self, message: Message) -> None:
        if message.performative == "request" and message.sender.startswith("client:"):
            asked = send(
                "request",
                [self.inventory],
                message.body,
                conversation_id=message.conversation_id,
            )
            self.asked[asked] = message
            log.info(f"asked {self.inventory} about order {message.id}")
        elif message.performative == "inform":
            customer = self.asked.pop(message.in_reply_to, None)
            if customer is not None:
                reply(customer, "inform", {"in_stock": True})
        else:
            log.warn(f"ignoring {message.performative} from {message.sender}")
