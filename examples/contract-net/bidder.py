"""A contract-net bidder: proposes its configured price for every task, or refuses.

Config: {"price": 12} to bid, {"refuse": true} to decline every call for proposals.
Deploy it with the capability `bidding` so that a `cfp` to capability:bidding reaches it.
"""

from __future__ import annotations

from typing import Any

from caxton_agent import Agent, Message, log, reply


class Bidder(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.price = config.get("price", 10)
        self.refusing = bool(config.get("refuse", False))

    def handle(self, message: Message) -> None:
        if message.performative == "cfp":
            if self.refusing:
                reply(message, "refuse", {"reason": "not taking work"})
            else:
                reply(message, "propose", {"price": self.price})
        elif message.performative == "accept-proposal":
            task = message.body.get("task") if isinstance(message.body, dict) else None
            reply(message, "inform", {"done": True, "task": task})
        elif message.performative == "reject-proposal":
            log.info(f"lost {message.conversation_id}")
        else:
            reply(message, "not-understood", {"performative": message.performative})
