"""Random keys and tokens, and their keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 32


def new_secret(kind: str) -> str:
    """A random key such as `lfb_…` (bank), `lfs_…` (staff) or `lft_…` (status token): 32 random bytes."""
    return f"{kind}_{secrets.token_urlsafe(KEY_BYTES)}"


def hash_secret(secret_key: str, value: str) -> str:
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def display_prefix(value: str) -> str:
    return value[:10]
