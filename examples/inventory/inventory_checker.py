"""An inventory checker (fipa-query): answers `query-ref` by running SQL through an MCP tool.

`query-ref` {"item": "widget"} is answered with `inform` {"item": "widget", "qty": 42}
(qty 0 and "known": false for an item the stock table does not list). The stock lives
in a SQLite database behind the SQLite MCP server, configured on the Caxton server as
`[tools.db]`; the agent reaches it only through the host (`call_tool`), and only
because it was deployed with `--tools db.read_query`. A tool that fails (a timeout,
the breaker open, the server down) is answered with `failure` and the reason.
"""

from __future__ import annotations

import ast

from caxton_agent import Agent, Message, ToolFailed, call_tool, log, reply


class InventoryChecker(Agent):
    def init(self, config: dict) -> None:
        self.table = config.get("table", "stock")

    def handle(self, message: Message) -> None:
        if message.performative != "query-ref":
            reply(message, "not-understood", {"performative": message.performative})
            return
        item = message.body.get("item") if isinstance(message.body, dict) else None
        if not isinstance(item, str) or not item:
            reply(message, "refuse", {"reason": 'ask for an item: {"item": "widget"}'})
            return
        quoted = item.replace("'", "''")
        query = f"SELECT qty FROM {self.table} WHERE item = '{quoted}'"
        try:
            result = call_tool("db", "read_query", {"query": query})
        except ToolFailed as failed:
            log.warn(f"stock of {item} unknown: {failed.reason}")
            reply(message, "failure", {"item": item, "reason": failed.reason})
            return
        # mcp-server-sqlite answers with the rows as Python literals: [{'qty': 42}]
        rows = ast.literal_eval(result.text) if result.text.startswith("[") else []
        if not rows:
            reply(message, "inform", {"item": item, "qty": 0, "known": False})
            return
        reply(message, "inform", {"item": item, "qty": int(rows[0]["qty"]), "known": True})
