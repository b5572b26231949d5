"""The voice line's call state, carried in the TwiML action URLs instead of on the server.

Each menu step's choices ride to the next step inside a token: signed and expiring
(itsdangerous) so a caller or an outsider cannot forge or replay an old step forever, and
encrypted (the vault) because the provider logs every URL it requests and the reference
and PIN must not be readable there. With no server-side state the menus keep working
while Redis is away.

Tokens are minted for one purpose (a menu step, or the recording-status callback) and a
token minted for one purpose does not open for another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer, base64_encode, want_bytes
from itsdangerous.url_safe import URLSafeSerializerMixin

from ivr.core.choices import FACTS, Choices
from ivr.core.vault import CannotOpen, Sealer, Secrets, key_list

# A whole call (menus, a ten-minute recording, the read-back) fits well inside an hour.
MENU_STEP_MAX_AGE = 3600
# The provider may deliver the recording-status callback late; a week is generous.
RECORDING_CALLBACK_MAX_AGE = 7 * 24 * 3600
PURPOSE_MAX_AGE = {"step": MENU_STEP_MAX_AGE, "recording": RECORDING_CALLBACK_MAX_AGE}


class BadCallState(Exception):
    """The token is missing, tampered with, expired, or minted for another purpose."""


@dataclass(frozen=True)
class CallState:
    """What the caller has chosen so far, their PIN once minted, and how often the current
    prompt was heard."""

    choices: Choices = field(default_factory=Choices)
    pin: str | None = None
    # The PIN's argon2 hash when it was minted ahead (`ivr.core.pin_pool`): the recording
    # callback stores it instead of hashing there. Sealed in the token like the PIN.
    pin_hash: str | None = None
    attempt: int = 0
    # A caller back with a reference: True once its PIN was proven (choices.reference is it),
    # and the number of the handler's question they heard (0: none), which a recording answers.
    proven: bool = False
    question: int = 0

    def advance(self, pin: str | None = None, pin_hash: str | None = None, **chosen: str) -> CallState:
        """The state for the next prompt: the given choices (and PIN), the attempt counter reset."""
        return CallState(choices=self.choices.but(**chosen), pin=pin or self.pin,
                         pin_hash=pin_hash or (None if pin else self.pin_hash), proven=self.proven,
                         question=self.question)

    def again(self) -> CallState:
        return replace(self, attempt=self.attempt + 1)

    def to_token_fields(self) -> dict[str, Any]:
        """What the token carries: only what is set, so a first step's token stays short.

        The names are flat (`language`, not `choices.language`): tokens minted before
        `Choices` existed look the same and still open.
        """
        state = {**self.choices.to_mapping(), "pin": self.pin, "pin_hash": self.pin_hash, "attempt": self.attempt,
                 "proven": self.proven, "question": self.question}
        return {name: value for name, value in state.items() if value not in (None, 0, False)}

    @classmethod
    def from_token_fields(cls, token_fields: dict[str, Any]) -> CallState:
        """The state a token carried; a name no step ever wrote is refused (ValueError)."""
        unknown = set(token_fields) - TOKEN_FIELDS
        if unknown:
            raise ValueError(f"unknown call-state fields: {sorted(unknown)}")
        attempt, question = token_fields.get("attempt", 0), token_fields.get("question", 0)
        if not isinstance(attempt, int) or not isinstance(question, int) or isinstance(question, bool):
            raise ValueError("attempt and question must be whole numbers")
        proven = token_fields.get("proven", False)
        if not isinstance(proven, bool):
            raise ValueError("proven must be true or false")
        pin_hash = token_fields.get("pin_hash")
        if pin_hash is not None and not isinstance(pin_hash, str):
            raise ValueError("pin_hash must be text")
        return cls(choices=Choices.from_mapping(token_fields), pin=token_fields.get("pin"), pin_hash=pin_hash,
                   attempt=attempt, proven=proven, question=question)


TOKEN_FIELDS = frozenset({*FACTS, "pin", "pin_hash", "attempt", "proven", "question"})


class _SealedJSON:
    """An itsdangerous serializer whose payload is JSON sealed by the vault."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def dumps(self, obj: Any) -> bytes:
        return self._sealer.seal(json.dumps(obj, separators=(",", ":")).encode())

    def loads(self, payload: bytes) -> Any:
        try:
            return json.loads(self._sealer.open(payload))
        except CannotOpen as error:
            raise BadData(str(error)) from None


# (salt, secret) -> the signing key itsdangerous derives from them: it derives it afresh for
# every token made or checked, and a voice step does both (a few keys, two purposes).
_DERIVED_KEYS: dict[tuple[bytes, bytes], bytes] = {}


class _SignedAt(TimestampSigner):
    """itsdangerous's signer with a given clock: the time a token is stamped with, and the
    time its age is measured at (so the hour and the week can be tested at their edges)."""

    now: float | None = None

    def get_timestamp(self) -> int:
        return int(self.now) if self.now is not None else super().get_timestamp()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = _DERIVED_KEYS.get((self.salt, secret))
        if derived is None:
            derived = _DERIVED_KEYS[(self.salt, secret)] = super().derive_key(secret)
        return derived


class _UncompressedSerializer(URLSafeTimedSerializer):
    """Never tries zlib on a token: a sealed payload is random bytes and never shrinks, so
    itsdangerous's attempt only costs time. Tokens it compressed (a leading ".") still open."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(super(URLSafeSerializerMixin, self).dump_payload(obj))


class CallStateCodec:
    """Turns a `CallState` into a URL-safe token and back."""

    def __init__(self, secret_keys: Secrets) -> None:
        self._secret_keys = key_list(secret_keys)
        self._serializers = {purpose: self._build(purpose, None) for purpose in PURPOSE_MAX_AGE}

    def _serializer(self, purpose: str, now: float | None) -> URLSafeTimedSerializer:
        return self._serializers[purpose] if now is None else self._build(purpose, now)

    def _build(self, purpose: str, now: float | None) -> URLSafeTimedSerializer:
        return _UncompressedSerializer(
            # itsdangerous signs with the *last* key listed and checks every one: oldest first,
            # so a token minted before a rotation still opens during its grace period.
            list(reversed(self._secret_keys)),
            salt=f"tipline.call-state.{purpose}",
            serializer=_SealedJSON(Sealer(self._secret_keys, f"call-state.{purpose}")),
            signer=type("SignedAt", (_SignedAt,), {"now": now}),
        )

    def dump(self, state: CallState, purpose: str = "step", now: float | None = None) -> str:
        """The token for `state`, stamped with `now` (default: the current time)."""
        token = self._serializer(purpose, now).dumps(state.to_token_fields())
        return token.decode() if isinstance(token, bytes) else token  # bytes: the payload is binary

    def load(self, token: str | None, purpose: str = "step", now: float | None = None) -> CallState:
        """The state in `token`, if it is genuine, for this purpose, and not older than the
        purpose allows at `now` (default: the current time)."""
        if not token:
            raise BadCallState("no call-state token")
        try:
            token_fields = self._serializer(purpose, now).loads(token, max_age=PURPOSE_MAX_AGE[purpose])
            return CallState.from_token_fields(token_fields)
        except (BadData, TypeError, ValueError, AttributeError) as error:
            raise BadCallState(type(error).__name__) from None
