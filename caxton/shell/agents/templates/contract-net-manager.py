# mypy: disable-error-code="import-not-found, misc"
"""A contract-net manager: turns a client's request into a call for proposals and awards it.

Config: {"bidders": 3} — how many answers (propose or refuse) to wait for.
A client sends `request` {"task": ..., "bidders": "capability:bidding"} (fipa-request);
the manager opens a fipa-contract-net conversation "<request id>-cnet", sends `cfp`
to the bidders (reply_by: two seconds), accepts the cheapest `propose`, rejects the
others, and answers the client with `inform` once the winner reports the task done.
"""

from __future__ import annotations

from typing import Any

from caxton_agent import Agent, Message, log, now, reply, send

CONTRACT_NET = "fipa-contract-net"
DEADLINE_MS = 2_000


class ContractNetManager(Agent):
    def init(self, config: dict[str, Any]) -> None:
        self.expected = int(config.get("bidders", 1))
        # its memory (snapshotted as JSON: messages kept as their envelope's text)
        # its memory (snapshotted as JSON: messages kept as their envelope's text)
        self.rounds: dict[str, dict[str, Any]] = {}

    def handle(self, message: Message) -> None:
        if message.performative == "request":
            self.open_round(message)
            return
        state = self.rounds.get(message.conversation_id)
        if state is None:
            reply(message, "not-understood", {"reason": "no such contract-net round"})
        elif message.performative == "propose":
            state["proposals"][message.sender] = message.to_json()
            self.award_when_complete(state)
        elif message.performative == "refuse":
            if message.sender not in state["refusals"]:
                state["refusals"].append(message.sender)
            self.award_when_complete(state)
        elif message.performative in ("inform", "failure"):
            self.finish(state, message)

    def open_round(self, request: Message) -> None:
        body = request.body if isinstance(request.body, dict) else {}
        if "task" not in body:
            reply(request, "refuse", {"reason": "a request needs a 'task'"})
            return
        conversation = f"{request.id}-cnet"
        self.rounds[conversation] = {
            "request": request.to_json(),
            "task": body["task"],
            "proposals": {},
            "refusals": [],
            "awarded": False,
        }
        send(
            "cfp",
            [str(body.get("bidders", "capability:bidding"))],
            {"task": body["task"]},
            conversation_id=conversation,
            protocol=CONTRACT_NET,
            reply_by=now() + DEADLINE_MS,
        )
        log.info(f"cfp for {body['task']!r} in {conversation}")

    def award_when_complete(self, state: dict[str, Any]) -> None:
        answers = len(state["proposals"]) + len(state["refusals"])
        if state["awarded"] or answers < self.expected:
            return
        state["awarded"] = True
        proposals = {n: Message.from_json(p) for n, p in state["proposals"].items()}
        if not proposals:
            reply(
                Message.from_json(state["request"]), "failure", {"reason": "every bidder refused"}
            )
            return
        winner = min(proposals, key=lambda name: proposals[name].body["price"])
        for name, proposal in proposals.items():
            if name == winner:
                reply(proposal, "accept-proposal", {"task": state["task"]})
            else:
                reply(proposal, "reject-proposal", {"reason": "a cheaper proposal won"})
        state["winner"] = winner

    def finish(self, state: dict[str, Any], outcome: Message) -> None:
        request = Message.from_json(state["request"])
        if outcome.performative == "failure":
            reply(request, "failure", {"winner": outcome.sender, "reason": outcome.body})
        else:
            price = Message.from_json(state["proposals"][outcome.sender]).body["price"]
            reply(
                request,
                "inform",
                {
                    "task": state["task"],
                    "conversation_id": outcome.conversation_id,
                    "winner": outcome.sender,
                    "price": price,
                    "result": outcome.body,
                },
            )
        del self.rounds[outcome.conversation_id]
