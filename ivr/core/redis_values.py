"""Redis replies as what our client hands back: bytes, since it never sets decode_responses.

redis-py types a reply loosely (`bytes | str` for a string, a union of every shape for a
sorted set's range); these say which one we hold, so the type checker can follow the rest.
"""

from __future__ import annotations

from redis.typing import EncodableT


def as_text(reply: object, errors: str = "strict") -> str:
    """A string reply as text (UTF-8)."""
    if isinstance(reply, bytes):
        return reply.decode(errors=errors)
    if isinstance(reply, str):
        return reply
    raise TypeError(f"expected a string reply from Redis, got {type(reply).__name__}")


def as_bytes(reply: object) -> bytes:
    """A string reply as bytes (UTF-8)."""
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    raise TypeError(f"expected a string reply from Redis, got {type(reply).__name__}")


# A stream entry as XRANGE, XREADGROUP and XAUTOCLAIM give it: its id and its fields. redis-py
# types those replies loosely (XRANGE's may be None, XREADGROUP's an int or a str), hence a cast.
StreamEntry = tuple[bytes, dict[bytes, bytes]]

# What HSET's `mapping` takes. redis-py types its keys as any encodable value, and a Mapping's
# keys are invariant, so a dict written with HSET is declared with exactly this type.
HashFields = dict[EncodableT, EncodableT]
