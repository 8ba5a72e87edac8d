"""Who may open a dashboard session: the dashboard's own page only, a few tabs at once."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from tui.dashboard import MAX_SESSIONS, DashboardServer


def dashboard() -> DashboardServer:
    return DashboardServer(host="127.0.0.1", port=8090, url="http://127.0.0.1:8090", where="x")


def opening(origin: str) -> web.Request:
    headers = {"Host": "127.0.0.1:8090", "Upgrade": "websocket", "Connection": "Upgrade"}
    if origin:
        headers["Origin"] = origin
    return make_mocked_request("GET", "/ws", headers=headers)


async def test_a_page_of_another_site_cannot_open_a_session() -> None:
    with pytest.raises(web.HTTPForbidden) as refused:
        await dashboard().handle_websocket(opening("https://evil.example"))
    assert "evil.example" in str(refused.value.text)


async def test_tabs_beyond_the_limit_are_turned_away() -> None:
    server = dashboard()
    server._sessions.update(object() for _ in range(MAX_SESSIONS))  # type: ignore[misc]
    with pytest.raises(web.HTTPServiceUnavailable) as refused:
        await server.handle_websocket(opening("http://127.0.0.1:8090"))
    assert "close one" in str(refused.value.text)
