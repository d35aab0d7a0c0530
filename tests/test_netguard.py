"""The address policy of the media fetcher: what may be connected to.

Pure functions over addresses: nothing here resolves a name or opens a socket.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, strategies as st

from labelcheck.fetch.netguard import (
    IPV4_REFUSED, METADATA, AddressRefused, Allowlist, check_addresses, normalize_host, parse_ip, refusal,
)

ip = ipaddress.ip_address


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private address (RFC 1918)"),
    ("10.255.255.255", "RFC 1918"),
    ("172.16.0.1", "RFC 1918"),
    ("172.31.255.255", "RFC 1918"),
    ("192.168.1.1", "RFC 1918"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("168.63.129.16", "Azure"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "RFC 6598"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("203.0.113.9", "documentation"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("ff02::1", "multicast"),
    ("fec0::1", "site-local"),
    ("2001:db8::1", "documentation"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("100::1", "discard-only"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("4000::1", "outside global unicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:0:10.0.0.1", "IPv4-translated"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("2002:7f00:1::1", "6to4 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 form of 169.254.169.254, a cloud metadata"),
    ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
])
def test_non_public_addresses_are_refused_with_the_reason(address, why):
    assert why in refusal(ip(address))


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1", "172.15.255.255", "100.63.255.255",
    "100.128.0.1", "169.253.255.255", "192.167.255.255", "223.255.255.255",
    "2606:4700:4700::1111", "2a00:1450:4001:81b::200e",
    "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808",
])
def test_public_addresses_pass(address):
    assert refusal(ip(address)) is None


def test_the_refusal_text_names_the_address_and_the_rule():
    with pytest.raises(AddressRefused, match=r"^10\.1\.2\.3 is a private address \(RFC 1918\)$"):
        check_addresses("10.1.2.3", [ip("10.1.2.3")], Allowlist())
    with pytest.raises(AddressRefused,
                       match=r"^media\.example resolves to 169\.254\.169\.254, which is a cloud metadata address"):
        check_addresses("media.example", [ip("169.254.169.254")], Allowlist())


def test_one_bad_answer_among_good_ones_refuses_the_name():
    # A rebinding or split-horizon name must not get through by also listing a public address.
    with pytest.raises(AddressRefused, match="10.0.0.1"):
        check_addresses("mixed.example", [ip("93.184.215.14"), ip("10.0.0.1")], Allowlist())
    check_addresses("public.example", [ip("93.184.215.14"), ip("2606:4700:4700::1111")], Allowlist())


def test_allowlist_addresses_and_networks():
    allow = Allowlist.parse(["127.0.0.1", "10.20.0.0/16", "[::1]"])
    assert allow.admits("x", ip("127.0.0.1"))
    assert allow.admits("x", ip("::ffff:127.0.0.1"))  # the same destination, mapped
    assert allow.admits("x", ip("10.20.3.4"))
    assert allow.admits("x", ip("::1"))
    assert not allow.admits("x", ip("127.0.0.2"))
    assert not allow.admits("x", ip("10.21.0.1"))
    check_addresses("127.0.0.1", [ip("127.0.0.1")], allow)
    with pytest.raises(AddressRefused):
        check_addresses("127.0.0.2", [ip("127.0.0.2")], allow)


def test_allowlist_host_names_admit_what_they_resolve_to():
    allow = Allowlist.parse(["Media.Test."])
    check_addresses("media.test", [ip("127.0.0.1"), ip("10.0.0.5")], allow)
    with pytest.raises(AddressRefused):
        check_addresses("other.test", [ip("127.0.0.1")], allow)


def test_metadata_addresses_need_an_exact_entry():
    broad = Allowlist.parse(["169.254.0.0/16", "metadata.test", "fd00::/8"])
    assert broad.admits("x", ip("169.254.1.1"))
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"):
        assert not broad.admits("metadata.test", ip(address))
    exact = Allowlist.parse(["169.254.169.254"])
    assert exact.admits("x", ip("169.254.169.254"))


@pytest.mark.parametrize("entry", ["", "   ", "10.0.0.0/33", "10.0.0.1/8", "300.1.1.1/32", "bad host!",
                                   "-leading.example", "a" * 64 + ".example", "fe80::/200"])
def test_bad_allowlist_entries_are_named(entry):
    with pytest.raises(ValueError) as excinfo:
        Allowlist.parse(["127.0.0.1", entry])
    assert repr(entry) in str(excinfo.value)


def test_host_names_are_compared_normalised():
    assert normalize_host("Example.COM.") == "example.com"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"
    for bad in ("", ".", "a..b", "under score", "x" * 254):
        with pytest.raises(ValueError):
            normalize_host(bad)


def test_parse_ip_reads_literals_only():
    assert parse_ip("[::1]") == ip("::1")
    assert parse_ip("10.0.0.1") == ip("10.0.0.1")
    # Odd IPv4 spellings are the resolver's to decode; the fetcher checks what it returns.
    for text in ("127.1", "0x7f000001", "2130706433", "example.com", ""):
        assert parse_ip(text) is None


ipv4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@given(ipv4s)
def test_embedded_ipv4_forms_inherit_the_verdict(v4):
    refused = refusal(v4) is not None
    mapped = ipaddress.IPv6Address((0xFFFF << 32) | int(v4))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1)
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    for form in (mapped, sixtofour, nat64):
        assert (refusal(form) is not None) == refused, form


@given(st.sampled_from(IPV4_REFUSED), st.integers(0, 2**32 - 1))
def test_every_address_in_a_refused_range_is_refused(row, offset):
    net, _ = row
    assert refusal(net[offset % net.num_addresses]) is not None


def test_metadata_table_is_all_refused_by_default():
    for address in METADATA:
        assert "metadata" in refusal(address) or "platform" in refusal(address)
