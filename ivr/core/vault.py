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
- `TipVault` encrypts tips at rest: a data key per tip, wrapped under the key of the month
  it arrived (a period key, `ivr.core.period_keys`: files outside Redis, each sealed under
  a rotatable master key, `KeyRing`, from VAULT_KEYS). Shredding a tip is deleting its
  wrapped key; re-keying its period afterwards makes that stick even in an old backup.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
KEY_BYTES = 32
# A period key's label: the month its tips arrived and a version ("2026-11.3").
PERIOD_LABEL = re.compile(r"(\d{4}-(?:0[1-9]|1[0-2]))\.([1-9][0-9]{0,8})")


class VaultError(Exception):
    """Base class for the vault's failures."""


class PeriodKeyGone(VaultError):
    """The period key a wrapped data key names was destroyed, and no later version carries
    the tip: it was shredded (or the record comes from a backup older than its shred)."""


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

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, the current one first."""
        return tuple(self._keys)

    @staticmethod
    def of_one_key(key_id: str, material: bytes) -> KeyRing:
        """A ring of one key (a period key, read from its file)."""
        return KeyRing(f"{key_id}:{base64.urlsafe_b64encode(material).decode()}")

    @staticmethod
    def fresh_material() -> bytes:
        """32 random bytes: a new key."""
        return AESGCM.generate_key(bit_length=KEY_BYTES * 8)

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


class PeriodKeySource(Protocol):
    """Where period keys come from (`ivr.core.period_keys.PeriodKeys`)."""

    def newest(self, period: str) -> KeyRing:
        """The ring of the period's newest key (created when the period has none)."""

    def ring(self, label: str) -> KeyRing:
        """The ring of one period key by label; raises VaultError when it was destroyed."""

    def labels(self, period: str | None = None) -> list[str]:
        """Every period key there is (or one period's), oldest first."""

    def new_version(self, period: str) -> str:
        """Create the period's next key version; returns its label."""

    def destroy(self, label: str) -> None:
        """Destroy one period key version."""

    def write_carried(self, label: str, wrapped_keys: dict[str, str]) -> None:
        """Record the tips that survived the re-key that made version `label`."""

    def carried(self, label: str, tip_id: str) -> str | None:
        """For a tip whose key version `label` was destroyed: its data key wrapped under the
        period's newest version, when that version carries it (it survived every re-key)."""

    def periods_to_reseal(self) -> list[str]:
        """Periods with a key sealed under a master key other than the current one."""


def period_of(moment: datetime.datetime) -> str:
    """The period a tip arriving at `moment` belongs to: its UTC month ("2026-11")."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m")


def period_label_of(wrapped: str) -> str | None:
    """The period key label a wrapped data key names, or None (wrapped under a master key)."""
    key_id = wrapped.partition(":")[0]
    return key_id if PERIOD_LABEL.fullmatch(key_id) else None


class TipVault:
    """Per-tip encryption: a fresh data key per tip, wrapped under its period's key.

    A wrapped key is `<period>.<version>:<data key wrapped under that period key>`; one
    from before period keys is `<master id>:<data key wrapped under that master key>` and
    still opens. Associated data binds every ciphertext to its tip and field, so a
    transcript copied onto another tip, or into another field, does not open. Shredding a
    tip is deleting its wrapped key: the ciphertexts that remain are noise.
    """

    def __init__(self, key_ring: KeyRing, periods: PeriodKeySource | None = None) -> None:
        self._ring = key_ring
        self.periods = periods

    @property
    def key_ring(self) -> KeyRing:
        """The master keys (VAULT_KEYS)."""
        return self._ring

    def _ring_for(self, wrapped_key: str) -> KeyRing:
        label = period_label_of(wrapped_key)
        if label is None or self.periods is None:
            return self._ring
        return self.periods.ring(label)

    def _unwrap(self, wrapped_key: str, tip_id: str) -> bytes:
        try:
            return self._ring_for(wrapped_key).unwrap(wrapped_key, self._key_context(tip_id))
        except PeriodKeyGone:
            # A record from a backup older than a re-key: the tip opens if it survived the
            # re-keys since (the newest version carries it), never if it was shredded.
            carried = self.periods.carried(wrapped_key.partition(":")[0], tip_id) if self.periods else None
            if carried is None:
                raise
            return self._ring_for(carried).unwrap(carried, self._key_context(tip_id))

    @staticmethod
    def _key_context(tip_id: str) -> bytes:
        return f"tipline.tip-key|{tip_id}".encode()

    def new_tip_key(self, tip_id: str, arrived: datetime.datetime | None = None) -> str:
        """A wrapped, fresh data key for a new tip arriving at `arrived` (default now): store it with the tip."""
        data_key = AESGCM.generate_key(bit_length=256)
        if self.periods is None:
            return self._ring.wrap(data_key, self._key_context(tip_id))
        period = period_of(arrived or datetime.datetime.now(datetime.UTC))
        return self.periods.newest(period).wrap(data_key, self._key_context(tip_id))

    def to_period(self, wrapped_key: str, tip_id: str, period: str) -> str:
        """The same data key wrapped under `period`'s newest key (unchanged when it already is)."""
        if self.periods is None:
            raise VaultError("this vault has no period keys")
        newest = self.periods.newest(period)
        if period_label_of(wrapped_key) == newest.current_id:
            return wrapped_key
        return newest.wrap(self._unwrap(wrapped_key, tip_id), self._key_context(tip_id))

    def seal(self, wrapped_key: str, tip_id: str, field: str, plaintext: str) -> bytes:
        data_key = AESGCM(self._unwrap(wrapped_key, tip_id))
        nonce = os.urandom(NONCE_BYTES)
        return nonce + data_key.encrypt(nonce, plaintext.encode(), f"tipline.field|{tip_id}|{field}".encode())

    def open(self, wrapped_key: str, tip_id: str, field: str, sealed: bytes) -> str:
        data_key = AESGCM(self._unwrap(wrapped_key, tip_id))
        try:
            plaintext = data_key.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                         f"tipline.field|{tip_id}|{field}".encode())
        except (InvalidTag, ValueError):
            raise CannotOpen(f"field {field!r} of this tip failed authentication") from None
        return plaintext.decode()

    def rewrap(self, wrapped_key: str, tip_id: str) -> str:
        """An old-format data key wrapped under the current master key (rotation); data untouched.

        A key wrapped under a period key is returned as it is: a master key rotation re-seals
        the period key files instead (`ivr.core.period_keys.PeriodKeys.reseal`)."""
        if period_label_of(wrapped_key) or self._ring.key_id_of(wrapped_key) == self._ring.current_id:
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
