"""`[tools.NAME]` tables of caxton.toml: what is accepted, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from caxton.shell.config import ConfigError, ServerConfig, load_config


def load(tmp_path: Path, text: str) -> ServerConfig:
    path = tmp_path / "caxton.toml"
    path.write_text(text)
    return load_config(path)


def test_stdio_and_http_servers_with_their_bounds(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
[tools.db]
command = "mcp-server-sqlite"
args = ["--db-path", "x.db"]
env = { LOG = "1" }
timeout = "2s"
max_concurrency = 2
breaker_threshold = 3
breaker_reset = 10
max_result_bytes = "64KiB"

[tools.web]
url = "http://127.0.0.1:8000/mcp"
""",
    )
    db, web = config.tools
    assert (db.name, db.command, db.args, dict(db.env)) == (
        "db",
        "mcp-server-sqlite",
        ("--db-path", "x.db"),
        {"LOG": "1"},
    )
    assert (db.timeout_ms, db.max_concurrency, db.breaker_threshold) == (2_000, 2, 3)
    assert (db.breaker_reset_ms, db.max_result_bytes) == (10_000, 64 << 10)
    assert (web.transport, web.where, web.timeout_ms) == (
        "http",
        "http://127.0.0.1:8000/mcp",
        30_000,
    )


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('[tools.db]\nargs = ["x"]', "tools.db: needs exactly one of command"),
        ('[tools.db]\ncommand = "x"\nurl = "http://h"', "tools.db: needs exactly one of command"),
        ('[tools.db]\nurl = "ftp://h"', "tools.db: url must start with http:// or https://"),
        (
            '[tools.db]\ncommand = "x"\ncomand = "y"',
            "tools.db: unknown key 'comand' (known: command",
        ),
        ("[tools.db]\ncommand = 3", "tools.db: command must be a string"),
        ('[tools.db]\ncommand = "x"\nargs = "a b"', "tools.db: args must be a list of strings"),
        (
            '[tools.db]\ncommand = "x"\ntimeout = "soon"',
            "tools.db: timeout: 'soon' is not a duration",
        ),
        (
            '[tools.db]\ncommand = "x"\nmax_concurrency = 0',
            "max_concurrency must be a whole number",
        ),
        (
            '[tools.db]\ncommand = "x"\nmax_result_bytes = 10',
            "max_result_bytes must be a size of at least 1KiB",
        ),
        ('[tools."d.b"]\ncommand = "x"', "tools.d.b: server names use letters"),
        ("[tools]\ndb = 3", "tools.db must be a table"),
        ('[tools.db]\nurl = "http://h"\nargs = []', "args and env go with command, not url"),
    ],
)
def test_bad_tables_are_refused_naming_the_key(tmp_path: Path, table: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, table)
    assert error in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'caxton.toml'}: tools.")


def test_a_misspelt_table_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown table \[tool\] \(known: \[agents\]"):
        load(tmp_path, '[tool.db]\ncommand = "x"')
    load(tmp_path, '[agents.greeter]\nwasm = "greeter.wasm"')  # caxton deploy's tables
