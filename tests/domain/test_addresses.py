"""Server addresses as people write them, and which hosts are this machine's loopback."""

from __future__ import annotations

import pytest

from caxton.domain.addresses import ServerAddress, is_loopback, parse_server_address


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ("127.0.0.1:50051", ServerAddress("127.0.0.1", 50051, tls=False)),
        ("http://10.0.0.7:6000", ServerAddress("10.0.0.7", 6000, tls=False)),
        ("https://caxton.local", ServerAddress("caxton.local", 50051, tls=True)),
        ("https://caxton.local:443/", ServerAddress("caxton.local", 443, tls=True)),
        ("HTTPS://[::1]:7000", ServerAddress("::1", 7000, tls=True)),
        ("[::1]:7000", ServerAddress("::1", 7000, tls=False)),
    ],
)
def test_an_address_is_plain_unless_it_says_https(written: str, parsed: ServerAddress) -> None:
    assert parse_server_address(written) == parsed


def test_an_address_is_written_back_as_it_connects() -> None:
    assert str(parse_server_address("https://[::1]:7000")) == "https://[::1]:7000"
    assert str(parse_server_address("http://127.0.0.1:7000")) == "127.0.0.1:7000"


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("grpc://host:1", "the scheme must be https://"),
        ("https://host:1/api", "is not HOST:PORT"),
        ("https://host:99999", "is not HOST:PORT"),
        ("https://user:pw@host:1", "give a token with --token"),
        ("https://host:0", "port 0"),
        ("host", "is not HOST:PORT"),
        ("host:http", "is not HOST:PORT"),
    ],
)
def test_a_malformed_address_says_which_forms_are_accepted(written: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_server_address(written)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "caxton.local", ""])
def test_wildcards_and_other_hosts_are_reachable_from_outside(host: str) -> None:
    assert not is_loopback(host)
