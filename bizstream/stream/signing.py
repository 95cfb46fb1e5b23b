"""Signed records: an HMAC-SHA256 of a record's value under a secret every machine shares, in a header.

Two topics carry what a model becomes, so both can be signed: ``bizstream.models.v1`` (which version serves, under
``kafka.models_key``: bizstream.stream.models) and ``bizstream.labels.v1`` (what the trainer learns from, under
``kafka.labels_key``). A signed models topic alone would still let anyone who can write labels decide what the next
promoted model learns — and the trainer would sign that model itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

HEADER = "bizstream-hmac-sha256"

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


def signature(key: str, value: bytes) -> bytes:
    """HMAC-SHA256 of a record's value under ``key``, hex: what its header carries."""
    return hmac.new(key.encode(), value, hashlib.sha256).hexdigest().encode()


def sign(key: str, value: bytes) -> list[tuple[str, bytes]] | None:
    """The headers of a record signed with ``key``; None (no header) when the key is empty."""
    return [(HEADER, signature(key, value))] if key else None


def signed(key: str, value: bytes, headers: Headers) -> bool:
    """Whether a record carries ``key``'s signature of its value (aiokafka gives headers as pairs, faust as a dict)."""
    given = (headers if isinstance(headers, Mapping) else dict(headers or ())).get(HEADER)
    return given is not None and hmac.compare_digest(given, signature(key, value))


def trusted(key: str, value: bytes, headers: Headers) -> bool:
    """Whether a record may be used: no key is set, or it carries the key's signature of its value."""
    return not key or signed(key, value, headers)
