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
from dataclasses import dataclass, fields, replace
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from ivr.core.vault import CannotOpen, Sealer

# A whole call (menus, a ten-minute recording, the read-back) fits well inside an hour.
MENU_STEP_MAX_AGE = 3600
# The provider may deliver the recording-status callback late; a week is generous.
RECORDING_CALLBACK_MAX_AGE = 7 * 24 * 3600
PURPOSE_MAX_AGE = {"step": MENU_STEP_MAX_AGE, "recording": RECORDING_CALLBACK_MAX_AGE}


class BadCallState(Exception):
    """The token is missing, tampered with, expired, or minted for another purpose."""


@dataclass(frozen=True)
class CallState:
    """What the caller has chosen so far, and how often the current prompt was heard."""

    language: str | None = None
    category: str | None = None
    reference: str | None = None
    pin: str | None = None
    attempt: int = 0

    def advance(self, **changes: Any) -> "CallState":
        """The state for the next prompt: the given choices, and the attempt counter reset."""
        return replace(self, attempt=0, **changes)

    def again(self) -> "CallState":
        return replace(self, attempt=self.attempt + 1)


STATE_FIELDS = fields(CallState)


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


class _SignedAt(TimestampSigner):
    """itsdangerous's signer with a given clock: the time a token is stamped with, and the
    time its age is measured at (so the hour and the week can be tested at their edges)."""

    now: float | None = None

    def get_timestamp(self) -> int:
        return int(self.now) if self.now is not None else super().get_timestamp()


class CallStateCodec:
    """Turns a `CallState` into a URL-safe token and back."""

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key
        self._serializers = {purpose: self._build(purpose, None) for purpose in PURPOSE_MAX_AGE}

    def _serializer(self, purpose: str, now: float | None) -> URLSafeTimedSerializer:
        return self._serializers[purpose] if now is None else self._build(purpose, now)

    def _build(self, purpose: str, now: float | None) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._secret_key,
            salt=f"tipline.call-state.{purpose}",
            serializer=_SealedJSON(Sealer(self._secret_key, f"call-state.{purpose}")),
            signer=type("SignedAt", (_SignedAt,), {"now": now}),
        )

    def dump(self, state: CallState, purpose: str = "step", now: float | None = None) -> str:
        """The token for `state`, stamped with `now` (default: the current time)."""
        fields = {f.name: getattr(state, f.name) for f in STATE_FIELDS if getattr(state, f.name) not in (None, 0)}
        token = self._serializer(purpose, now).dumps(fields)
        return token.decode() if isinstance(token, bytes) else token  # bytes: the payload is binary

    def load(self, token: str | None, purpose: str = "step", now: float | None = None) -> CallState:
        """The state in `token`, if it is genuine, for this purpose, and not older than the
        purpose allows at `now` (default: the current time)."""
        if not token:
            raise BadCallState("no call-state token")
        try:
            fields = self._serializer(purpose, now).loads(token, max_age=PURPOSE_MAX_AGE[purpose])
            return CallState(**fields)
        except (BadData, TypeError, ValueError) as error:
            raise BadCallState(type(error).__name__) from None
