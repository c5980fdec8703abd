"""Address helpers of the protocol core: canonical client addresses and the PASV reply's numbers."""

from __future__ import annotations

import pytest

from ftpd.proto.netaddr import ipv4_octets, normalise_ip, pasv_numbers


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped: an IPv4 client on a dual-stack socket
        ("::FFFF:10.0.0.1", "10.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("not an address:", "not an address:"),
    ],
)
def test_normalise_ip(given: str, canonical: str) -> None:
    assert normalise_ip(given) == canonical


@pytest.mark.parametrize("host", ["192.168.100.254", "10.0.0.1", "0.0.0.0"])
def test_pasv_numbers_are_the_octets(host: str) -> None:
    assert pasv_numbers(host) == host.replace(".", ",")
    assert tuple(int(n) for n in pasv_numbers(host).split(",")) == ipv4_octets(host)


@pytest.mark.parametrize("host", ["::1", "1.2.3", "1.2.3.256", "a.b.c.d", ""])
def test_pasv_numbers_refuse_what_is_not_ipv4_every_time(host: str) -> None:
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValueError):
            pasv_numbers(host)
