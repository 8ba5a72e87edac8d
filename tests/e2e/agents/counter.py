"""A counter with memory (the SDK snapshots its attributes): answers each message with
how many it has handled. `{"spin": true}` runs past its time budget: a trap."""

from typing import Any

from caxton_agent import Agent, Message, random, reply


class Counter(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.count = 0
        self.seed = random() % 1000  # journaled: a rebuild gets the same seed

    def handle(self, message: Message) -> None:
        body = message.body or {}
        while body.get("spin"):
            pass
        self.count += 1
        reply(message, "inform", {"count": self.count, "seed": self.seed})
