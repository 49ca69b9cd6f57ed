import pytest

from memory.documents.addresses import PUBLIC_ONLY, AddressPolicy
from memory.documents.errors import DocumentError, ErrorCode

TESTS_ONLY = AddressPolicy(allow_loopback_for_tests=True)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:192.168.0.1", "a private address"),
        ("2002:0a00:0001::1", "a private address"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a00:1", "a private address"),  # NAT64 wrapping 10.0.0.1
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a private address"),
        ("100.64.0.1", "not a public address"),
        ("not-an-ip", "not an IP address"),
    ],
)
def test_internal_addresses_are_refused(address, reason):
    assert PUBLIC_ONLY.refusal_reason(address) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1"]
)
def test_public_addresses_are_allowed(address):
    assert PUBLIC_ONLY.refusal_reason(address) is None


def test_the_test_switch_allows_loopback_and_nothing_else():
    assert TESTS_ONLY.refusal_reason("127.0.0.1") is None
    assert TESTS_ONLY.refusal_reason("::1") is None
    assert TESTS_ONLY.refusal_reason("::ffff:127.0.0.1") is None
    for address in ("10.0.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "fe80::1", "224.0.0.1"):
        assert TESTS_ONLY.refusal_reason(address) is not None


def test_check_refuses_if_any_address_is_internal():
    with pytest.raises(DocumentError) as error:
        PUBLIC_ONLY.check("mixed.example", ["8.8.8.8", "10.1.2.3"])
    assert error.value.code is ErrorCode.BLOCKED_ADDRESS
    assert "mixed.example" in error.value.message and "private" in error.value.message
    PUBLIC_ONLY.check("public.example", ["8.8.8.8", "2606:4700:4700::1111"])


def test_a_host_without_addresses_fails():
    with pytest.raises(DocumentError) as error:
        PUBLIC_ONLY.check("nowhere.example", [])
    assert error.value.code is ErrorCode.FETCH_FAILED
