"""SSRF guard: which URLs the collector may fetch (policy plus DNS resolution, no HTTP)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from monitor.errors import BlockedURLError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _unwrap(ip: IPAddress) -> IPAddress:
    """Map IPv4-mapped/compatible IPv6 (``::ffff:127.0.0.1``) to the IPv4 address it stands for."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def is_public_address(ip: IPAddress) -> bool:
    """True when ``ip`` is a globally routable unicast address."""
    ip = _unwrap(ip)
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


class AddressGuard:
    """Refuse URLs whose scheme is not http(s) or whose host resolves to a non-public address.

    ``allow`` lists exceptions: hostnames (``"localhost"``), addresses (``"127.0.0.1"``) or CIDR ranges
    (``"10.0.0.0/8"``). ``allow_files`` permits ``file:`` URLs (demo only).
    """

    def __init__(self, allow: Sequence[str] = (), allow_files: bool = False) -> None:
        if isinstance(allow, str):
            allow = [part for part in allow.replace(",", " ").split()]
        allow = allow or ()
        self.allow_files = allow_files
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    def is_allowed_address(self, ip: IPAddress) -> bool:
        """True when ``ip`` is public or listed in ``allow``."""
        for candidate in {ip, _unwrap(ip)}:
            if any(candidate.version == net.version and candidate in net for net in self._networks):
                return True
        return is_public_address(ip)

    def check_url(self, url: str) -> None:
        """Raise BlockedURLError unless ``url`` may be fetched; FetchError when its host does not resolve.

        A hostname listed in ``allow`` is accepted without a DNS lookup.
        """
        self._check(url)

    def _check(self, url: str) -> list[str]:
        try:
            parts = urlsplit(url.strip())
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").rstrip(".").lower()
            port = parts.port
        except ValueError:
            raise BlockedURLError(f"invalid URL: {url!r}") from None
        if scheme == "file":
            if self.allow_files:
                return []
            raise BlockedURLError("file: URLs are not allowed")
        if scheme not in _DEFAULT_PORTS:
            raise BlockedURLError(f"only http and https URLs are allowed, not {scheme or 'no scheme'}")
        if not host:
            raise BlockedURLError(f"URL has no host: {url!r}")
        if host.strip("[]") in self._hosts:
            return []
        return self.resolve_host(host, port or _DEFAULT_PORTS[scheme])

    def resolve_host(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses if every one is allowed; raise otherwise."""
        host = host.strip("[]").rstrip(".").lower()
        host_listed = host in self._hosts
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, OSError):
                raise FetchError(f"DNS lookup failed for {host}") from None
            addresses = []
            for info in infos:
                try:
                    ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
                except ValueError:
                    continue
                if ip not in addresses:
                    addresses.append(ip)
            if not addresses:
                raise FetchError(f"DNS lookup failed for {host}")
        if not host_listed:
            for ip in addresses:
                if not self.is_allowed_address(ip):
                    raise BlockedURLError(
                        f"{host} resolves to {ip}, a private or reserved address; fetching it is not allowed")
        return [str(ip) for ip in addresses]
