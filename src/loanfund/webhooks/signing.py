"""Signing secrets and signatures (Standard Webhooks, through the `standardwebhooks` package).

An endpoint's secret is never stored. It is derived: HMAC-SHA256 of a random salt (stored) under a key
derived from `LOANFUND_SECRET_KEY`, shown to the bank once as `whsec_<base64>`. The database holds only
the salt, which is worth nothing without the server's key. Rotating draws a new salt; the previous one
keeps signing beside it until its expiry, so the `webhook-signature` header then carries two `v1,`
signatures and a receiver holding either secret verifies the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from math import floor

from standardwebhooks import Webhook

from loanfund.core.config import Settings

_PURPOSE = b"loanfund webhook signing secret v1"


def new_salt() -> str:
    return secrets.token_urlsafe(24)


def secret_for(settings: Settings, salt: str) -> str:
    """The `whsec_` signing secret of a salt (32 bytes)."""
    key = hmac.new(settings.secret_key.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()
    raw = hmac.new(key, salt.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()


def headers(message_id: str, at: datetime, body: bytes, signing_secrets: Sequence[str]) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one `v1,` signature per secret, space-separated."""
    signature = " ".join(Webhook(s).sign(message_id, at, body) for s in signing_secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signature,
    }
