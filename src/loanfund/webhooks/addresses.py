"""Where a webhook may go, from the URL and from each address its host resolves to (see
`webhooks.sender`, which checks every connection). Imported by the API without the HTTP client."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from loanfund.core.config import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_problem(ip: IpAddress) -> str | None:
    """Why a webhook may not go to `ip` (None: it may)."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not a public address"
    return None


def url_problem(settings: Settings, url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, from the URL alone (None: it can; a host name is
    checked again, resolved, at every delivery)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "the URL must be http or https"
    if settings.env == "prod" and parts.scheme != "https":
        return "the URL must be https"
    if parts.username is not None or parts.password is not None:
        return "the URL may not carry a user name or password (the signature authenticates)"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "the URL has no host"
    if settings.webhook_allow_private_targets:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "the URL's host is this machine (loopback)"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    problem = address_problem(ip)
    return f"the URL's address is {problem}" if problem else None
