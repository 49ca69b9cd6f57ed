"""Which IP addresses a fetched link may lead to (server-side request forgery guard).

A link a user sends must not make the bot talk to its own network: loopback, private
ranges, link-local (cloud metadata at 169.254.169.254), multicast, reserved and
unspecified addresses, in IPv4 and IPv6. Addresses that embed an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``) are judged by
the address they embed too, since Python 3.11's `ipaddress` does not look inside
them. Anything else that is not globally routable (e.g. 100.64.0.0/10) is refused
by the catch-all `is_global` test.

Tests serve pages from 127.0.0.1 (nothing else is reachable offline), so the
policy has one explicit switch, `allow_loopback_for_tests`, which permits loopback
and nothing more. Production code uses `PUBLIC_ONLY`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .errors import DocumentError, ErrorCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Refuses every address that is not public unicast.

    allow_loopback_for_tests: also permit loopback (127.0.0.0/8, ::1 and their
        IPv4-mapped forms). For tests against a local server only; a bot with this
        set lets users make it fetch from services on its own host.
    """

    allow_loopback_for_tests: bool = False

    def refusal_reason(self, address: str) -> str | None:
        """Why `address` is refused (e.g. "a private address"), or None if allowed."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
        for candidate in _with_embedded(parsed):
            reason = self._reason(candidate)
            if reason is not None:
                return reason
        return None

    def check(self, host: str, addresses: list[str]) -> None:
        """Raise DocumentError(blocked_address) if any address of `host` is refused."""
        if not addresses:
            raise DocumentError(ErrorCode.FETCH_FAILED, f"The host name {host} has no address.")
        for address in addresses:
            reason = self.refusal_reason(address)
            if reason is not None:
                raise DocumentError(
                    ErrorCode.BLOCKED_ADDRESS,
                    f"The link leads to {host}, {reason}, which is not allowed. Send a link to a public web page.",
                )

    def _reason(self, address: IPAddress) -> str | None:
        if address.is_loopback:
            return None if self.allow_loopback_for_tests else "a loopback address"
        if address.is_unspecified:
            return "an unspecified address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_private:
            return "a private address"
        if address.is_reserved:
            return "a reserved address"
        if not address.is_global:
            return "not a public address"
        return None


PUBLIC_ONLY = AddressPolicy()


def _with_embedded(address: IPAddress) -> list[IPAddress]:
    """The addresses to judge: the address itself and any IPv4 address it embeds.

    For IPv4-mapped and NAT64 addresses only the embedded address counts (they are
    just ways of reaching it; ipaddress files both prefixes under "reserved"); for
    6to4 and Teredo both must pass.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    found: list[IPAddress] = [address]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found
