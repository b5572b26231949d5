"""All cryptography in Tipline lives behind this module; nothing else imports `cryptography`.

- `Sealer` seals short values for one purpose (call-state tokens, job handles) with keys
  derived from SECRET_KEY;
- `KeyedDigest` names things after provider ids without revealing them;
- both take SECRET_KEY's list (`new,old`): the first seals and names, every key listed
  opens, and `KeyedDigest.every` gives a value's names under each key, current first, so
  what an older key named can still be found (and moved: `ivr/core/secret_rotation.py`);
- `ChainMac` chains the console's audit trail under AUDIT_KEY, so that an entry cannot be
  edited, dropped or made up without the key;
- `SessionKeys` turns an SMS sender's number into a daily-rotating session key;
- `TipVault` encrypts tips at rest: a data key per tip, wrapped by rotatable master keys
  (`KeyRing`, from VAULT_KEYS). Shredding a tip is deleting its wrapped key.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
from collections.abc import Sequence

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


Secrets = str | Sequence[str]
"""One secret, or a rotation's list of them: the current one first, older ones after."""


def key_list(secrets: Secrets) -> tuple[str, ...]:
    listed = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not listed:
        raise ValueError("at least one key is needed")
    return listed


def key_fingerprint(secret: str) -> str:
    """A short name for a key that reveals nothing about it (an HMAC of a fixed label under it)."""
    return hmac.new(derive_key(secret, "tipline.fingerprint"), b"fingerprint", hashlib.sha256).hexdigest()[:16]


class Sealer:
    """Authenticated encryption (AES-256-GCM) of short values for one purpose.

    Seals under the first key listed; opens under any, so values sealed before a rotation
    still open during its grace period, and `rotate` re-seals them under the current key.
    """

    def __init__(self, secrets: Secrets, purpose: str) -> None:
        self._aeads = [AESGCM(derive_key(secret, f"tipline.seal.{purpose}")) for secret in key_list(secrets)]
        self._purpose = purpose.encode()

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aeads[0].encrypt(nonce, plaintext, self._purpose)

    def open(self, sealed: bytes) -> bytes:
        return self._open(sealed)[0]

    def rotate(self, sealed: bytes) -> bytes | None:
        """`sealed` re-sealed under the current key, or None when it is sealed under it already."""
        plaintext, index = self._open(sealed)
        return None if index == 0 else self.seal(plaintext)

    def _open(self, sealed: bytes) -> tuple[bytes, int]:
        if len(sealed) <= NONCE_BYTES:
            raise CannotOpen("sealed value is too short")
        for index, aead in enumerate(self._aeads):
            try:
                return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._purpose), index
            except InvalidTag:
                continue
        raise CannotOpen("sealed value failed authentication under every key listed")


class KeyedDigest:
    """HMAC-SHA256 of provider ids for one purpose: a stable name that reveals nothing.

    Calling it names a value under the current (first) key; `every` names it under each
    key listed, current first, for lookups that must find what was named before a rotation.
    """

    def __init__(self, secrets: Secrets, purpose: str) -> None:
        self._keys = [derive_key(secret, f"tipline.digest.{purpose}") for secret in key_list(secrets)]

    def __call__(self, value: str) -> str:
        return self._digest(self._keys[0], value)

    def every(self, value: str) -> tuple[str, ...]:
        return tuple(self._digest(key, value) for key in self._keys)

    @staticmethod
    def _digest(key: bytes, value: str) -> str:
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


class ChainMac:
    """HMAC-SHA256 links of a hash chain (the audit trail), keyed by AUDIT_KEY.

    Each MAC covers the previous MAC and the entry's bytes, so a link cannot be moved,
    changed or recomputed without the key. `previous_mac` is a hex MAC or a fixed label
    (the chain's genesis, the head record); the newline that follows it cannot occur in
    either, so no two (previous, entry) pairs give the same message.
    """

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "tipline.audit")
        self.fingerprint = key_fingerprint(secret)

    def mac(self, previous_mac: str, entry_bytes: bytes) -> str:
        if "\n" in previous_mac:
            raise ValueError("previous_mac must be a single line (a hex MAC or a fixed label)")
        return hmac.new(self._key, previous_mac.encode() + b"\n" + entry_bytes, hashlib.sha256).hexdigest()

    def verify(self, previous_mac: str, entry_bytes: bytes, mac: str) -> bool:
        """Whether `mac` is this link's MAC (a constant-time comparison)."""
        if "\n" in previous_mac:
            return False
        return hmac.compare_digest(self.mac(previous_mac, entry_bytes).encode(), mac.encode())


class UnknownKey(VaultError):
    """A wrapped data key names a master key that is not in VAULT_KEYS (retired too early?)."""


class KeyRing:
    """Master keys from VAULT_KEYS (`id:base64key,...`). The first wraps new data keys;
    every key listed can unwrap, so a rotation adds a key in front and keeps the old one
    until `rewrap` has moved every tip over."""

    def __init__(self, spec: str) -> None:
        self._keys: dict[str, AESGCM] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, _, encoded = item.partition(":")
            try:
                material = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                material = b""
            if not key_id or len(material) != 32 or key_id in self._keys:
                raise VaultError("VAULT_KEYS must be 'id:base64url(32 random bytes)', comma-separated, ids unique.")
            self._keys[key_id] = AESGCM(material)
        if not self._keys:
            raise VaultError("VAULT_KEYS names no key.")
        self.current_id = next(iter(self._keys))

    def wrap(self, data_key: bytes, context: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current_id].encrypt(nonce, data_key, context)
        return f"{self.current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unwrap(self, wrapped: str, context: bytes) -> bytes:
        key_id, _, encoded = wrapped.partition(":")
        if key_id not in self._keys:
            raise UnknownKey(f"data key wrapped under master key {key_id!r}, which VAULT_KEYS does not list")
        blob = base64.urlsafe_b64decode(encoded)
        try:
            return self._keys[key_id].decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
        except InvalidTag:
            raise CannotOpen("wrapped data key failed authentication") from None

    def key_id_of(self, wrapped: str) -> str:
        return wrapped.partition(":")[0]


class TipVault:
    """Per-tip encryption: a fresh data key per tip, wrapped by the key ring.

    Associated data binds every ciphertext to its tip and field, so a transcript copied
    onto another tip, or into another field, does not open. Shredding a tip is deleting
    its wrapped key: the ciphertexts that remain are noise.
    """

    def __init__(self, key_ring: KeyRing) -> None:
        self._ring = key_ring

    @staticmethod
    def _key_context(tip_id: str) -> bytes:
        return f"tipline.tip-key|{tip_id}".encode()

    def new_tip_key(self, tip_id: str) -> str:
        """A wrapped, fresh data key for a new tip: store it with the tip."""
        return self._ring.wrap(AESGCM.generate_key(bit_length=256), self._key_context(tip_id))

    def seal(self, wrapped_key: str, tip_id: str, field: str, plaintext: str) -> bytes:
        data_key = AESGCM(self._ring.unwrap(wrapped_key, self._key_context(tip_id)))
        nonce = os.urandom(NONCE_BYTES)
        return nonce + data_key.encrypt(nonce, plaintext.encode(), f"tipline.field|{tip_id}|{field}".encode())

    def open(self, wrapped_key: str, tip_id: str, field: str, sealed: bytes) -> str:
        data_key = AESGCM(self._ring.unwrap(wrapped_key, self._key_context(tip_id)))
        try:
            plaintext = data_key.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                         f"tipline.field|{tip_id}|{field}".encode())
        except (InvalidTag, ValueError):
            raise CannotOpen(f"field {field!r} of this tip failed authentication") from None
        return plaintext.decode()

    def rewrap(self, wrapped_key: str, tip_id: str) -> str:
        """The same data key wrapped under the current master key (rotation); data untouched."""
        if self._ring.key_id_of(wrapped_key) == self._ring.current_id:
            return wrapped_key
        return self._ring.wrap(self._ring.unwrap(wrapped_key, self._key_context(tip_id)), self._key_context(tip_id))


class SessionKeys:
    """Rotating session keys for SMS: HMAC-SHA256 of the sender's number under a day's key.

    The day's key is derived from SECRET_KEY with HKDF over the UTC date, so no key is
    stored and "dropping" yesterday's key is simply not deriving it once the grace period
    (one session TTL after midnight) is over. The price, said plainly: anyone holding
    SECRET_KEY and a number can recompute that day's session key. Sessions are therefore
    short, and nothing named by a session key outlives the day plus one session TTL.
    """

    def __init__(self, secrets: Secrets, grace_seconds: int) -> None:
        self._secrets = key_list(secrets)
        self.grace_seconds = grace_seconds

    @staticmethod
    def _day_key(secret: str, day: datetime.date) -> bytes:
        return derive_key(secret, f"tipline.sms-session.{day.isoformat()}")

    def candidates(self, number: str, now: float) -> tuple[str, ...]:
        """Today's session key first; yesterday's too, within one session TTL after midnight;
        after those, the same days under SECRET_KEY's older keys (a rotation's grace period)."""
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        normalised = "".join(number.split()).encode()
        days = [moment.date()]
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if (moment - midnight).total_seconds() < self.grace_seconds:
            days.append(moment.date() - datetime.timedelta(days=1))
        return tuple(hmac.new(self._day_key(secret, day), normalised, hashlib.sha256).hexdigest()[:32]
                     for secret in self._secrets for day in days)
