"""All cryptography in Tipline lives behind this module; nothing else imports `cryptography`.

For now it seals short values for a purpose (call-state tokens, job handles) with keys
derived from SECRET_KEY, and makes keyed digests of provider ids so that a Redis key or
a job id can be derived from an id without revealing it. The per-tip key ring (seal,
open, shred, rotate) grows here too.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class VaultError(Exception):
    """Base class for the vault's failures."""


class CannotOpen(VaultError):
    """A sealed value was tampered with, truncated, or sealed under another key or purpose."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose, so that one secret never keys two different jobs."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())


class Sealer:
    """Authenticated encryption (AES-256-GCM) of short values for one purpose."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(derive_key(secret, f"tipline.seal.{purpose}"))
        self._purpose = purpose.encode()

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, self._purpose)

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) <= NONCE_BYTES:
            raise CannotOpen("sealed value is too short")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._purpose)
        except InvalidTag:
            raise CannotOpen("sealed value failed authentication") from None


class KeyedDigest:
    """HMAC-SHA256 of provider ids for one purpose: a stable name that reveals nothing."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = derive_key(secret, f"tipline.digest.{purpose}")

    def __call__(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]
