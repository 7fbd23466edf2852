"""The loopback guard: every address servingsim binds to must be in 127.0.0.0/8."""

from __future__ import annotations

import ipaddress

LOOPBACK_NET = ipaddress.IPv4Network("127.0.0.0/8")


class NotLoopbackError(ValueError):
    """An address outside 127.0.0.0/8 was offered for binding or sending."""


def is_loopback_v4(address: str) -> bool:
    """True when ``address`` is an IPv4 address inside 127.0.0.0/8."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return isinstance(ip, ipaddress.IPv4Address) and ip in LOOPBACK_NET


def require_loopback(address: str) -> str:
    """Return ``address`` unchanged, or raise NotLoopbackError naming it."""
    if not is_loopback_v4(address):
        raise NotLoopbackError(f"refusing address {address!r}: servingsim only binds inside {LOOPBACK_NET}")
    return address


def parse_host_port(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (loopback host, port 0..65535; 0 means pick a free port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port in {value!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} in {value!r} is out of range 0..65535")
    return require_loopback(host), port
