"""counter.py's next build: it answers with its version too, and it runs past its time
budget on `{"poison": true}`, which the first build handled."""

from typing import Any

from caxton_agent import Agent, Message, random, reply


class Counter(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.count = 0
        self.seed = random() % 1000

    def handle(self, message: Message) -> None:
        body = message.body or {}
        while body.get("spin") or body.get("poison"):
            pass
        self.count += 1
        reply(message, "inform", {"count": self.count, "seed": self.seed, "version": 2})
