"""One HTTP attempt: sign, POST, read a bounded answer; and the rules for where a webhook may go.

- No redirects followed (a 3xx is a failed attempt), a timeout, at most `webhook_response_max_bytes`
  of the answer read, no proxy taken from the environment.
- No private, loopback, link-local, multicast or otherwise non-global address unless
  `LOANFUND_WEBHOOK_ALLOW_PRIVATE_TARGETS`: the host is resolved when the connection is opened and
  every address it resolves to is checked, and the connection goes to the address checked — so a name
  that resolves to a public address when checked and to an internal one a moment later (DNS
  rebinding) cannot slip through. TLS still verifies the certificate against the URL's host name.
- `https` only in production (`LOANFUND_ENV=prod`).
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from loanfund import __version__
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.webhooks import signing
from loanfund.webhooks.addresses import address_problem


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address webhooks may not reach."""


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass `address_problem` (or to any, when private ones are allowed),
    to the very address it checked."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self.allow_private:
            for address in addresses:
                problem = address_problem(ipaddress.ip_address(address.split("%")[0]))
                if problem:
                    raise AddressRefused(f"address not allowed: {host} is {address} ({problem})")
        last: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections go through `_GuardedBackend`.

    httpx builds its pool without a way to choose the network backend, so the pool is built again here
    with httpcore's documented `network_backend`, and TLS set up as httpx sets it up."""

    def __init__(self, allow_private: bool, max_connections: int) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # honours SSL_CERT_FILE, for a private CA
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(allow_private),
        )


@dataclass(frozen=True)
class Message:
    """What a worker sends: the delivery's event to one endpoint."""

    delivery_id: int
    endpoint_id: int
    url: str
    message_id: str
    payload: bytes
    signing_secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # PostgreSQL keeps no NUL in a text


class Sender:
    """Sends messages over one guarded connection pool; safe to share between threads."""

    def __init__(self, settings: Settings, *, max_connections: int | None = None) -> None:
        self.settings = settings
        self.client = httpx.Client(
            transport=GuardedTransport(
                settings.webhook_allow_private_targets,
                max_connections or settings.webhook_worker_concurrency,
            ),
            timeout=httpx.Timeout(settings.webhook_timeout_s),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": f"loanfund-webhooks/{__version__}"},
        )

    def close(self) -> None:
        self.client.close()

    def send(self, message: Message) -> Outcome:
        """One attempt; never raises for what the network or the receiver does."""
        started, t0 = utcnow(), time.monotonic()

        def outcome(**kw: Any) -> Outcome:
            return Outcome(started_at=started, duration_ms=round((time.monotonic() - t0) * 1000), **kw)

        if self.settings.env == "prod" and not message.url.startswith("https://"):
            return outcome(error="refused: only https endpoints are called in production")
        headers = {
            **signing.headers(message.message_id, started, message.payload, message.signing_secrets),
            "content-type": "application/json",
            "accept-encoding": "identity",  # the answer is read raw, up to a limit
        }
        limit, deadline = self.settings.webhook_response_max_bytes, t0 + self.settings.webhook_timeout_s
        try:
            with self.client.stream("POST", message.url, content=message.payload, headers=headers) as r:
                read = bytearray()
                for chunk in r.iter_raw():
                    read += chunk
                    if len(read) >= limit or time.monotonic() > deadline:
                        break
                excerpt = _clean(bytes(read[:limit]).decode("utf-8", errors="replace"))
                retry_after = retry_after_seconds(r.headers.get("retry-after"), utcnow())
                return outcome(status_code=r.status_code, excerpt=excerpt or None, retry_after_s=retry_after)
        except httpx.TimeoutException:
            return outcome(error=f"timed out after {self.settings.webhook_timeout_s:g} s")
        except httpx.HTTPError as exc:
            return outcome(error=_clean(f"{type(exc).__name__}: {exc}")[:500])
