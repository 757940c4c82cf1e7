"""The client's address: the socket peer, or X-Forwarded-For behind a trusted proxy.

The guard decides "from where" on this address, so a client must not be able
to choose it. X-Forwarded-For is read only when the socket peer is one of the
configured trusted proxies; then the right-most address that is not itself a
trusted proxy is the client (each proxy appends the address it saw, so
everything left of that is whatever the client chose to write).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from bpoguard.errors import InputError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForwardingError(InputError):
    """X-Forwarded-For from a trusted proxy is malformed, or the peer has no address."""


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of trusted proxies; InputError names a bad one."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise InputError(f"trusted proxy {text!r} is not an address or CIDR") from None
    return tuple(networks)


def client_address(
    peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]
) -> tuple[str, bool]:
    """The client's address, and whether an X-Forwarded-For was ignored (untrusted peer)."""
    if peer is None:
        raise ForwardingError("the connection has no peer address")
    peer_ip = _address(peer)
    if peer_ip is None:
        # A Unix socket or a test transport with no IP: such a peer is nowhere.
        raise ForwardingError("the connection's peer address is not an IP address")
    if not _trusted(peer_ip, trusted):
        return str(peer_ip), bool(forwarded)
    hops = [hop.strip() for header in forwarded for hop in header.split(",")]
    if not hops:
        return str(peer_ip), False
    chosen = None
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            raise ForwardingError("malformed X-Forwarded-For from a trusted proxy")
        chosen = ip
        if not _trusted(ip, trusted):
            break
    assert chosen is not None
    return str(chosen), False


def _trusted(ip: Address, trusted: Sequence[Network]) -> bool:
    return any(ip.version == n.version and ip in n for n in trusted)


def _address(text: str) -> Address | None:
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return ip
