# mypy: disable-error-code="import-not-found, misc"
"""A fipa-request handler: answers `request` with `inform`, anything else with `not-understood`.

Build it with `caxton agent build`, deploy it, and send it a request:
`caxton send --to <name> --content '{"question": "..."}' --wait 5s`.
"""

from __future__ import annotations

from typing import Any

from caxton_agent import Agent, Message, log, now, reply


class RequestHandler(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.config = config

    def handle(self, message: Message) -> None:
        if message.performative != "request":
            reply(message, "not-understood", {"performative": message.performative})
            return
        log.info(f"request from {message.sender}")
        reply(message, "inform", {"received": message.body, "at": now()})
