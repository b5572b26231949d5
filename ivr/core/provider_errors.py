"""What can go wrong talking to the provider, one class per way, and which is which.

Messages say what failed and what to do, never which sid it was: they reach logs and
failed jobs. `ivr.core.provider` re-exports these; import them from there.
"""

from __future__ import annotations

# Twilio error 20009: a call or message cannot be deleted before it is complete.
STILL_IN_PROGRESS_CODE = 20009


class ProviderError(Exception):
    """The provider could not do what we asked; the message never carries a sid."""


class ProviderUnavailable(ProviderError):
    """A network error, a timeout, a 5xx or a 429: try again later."""


class CredentialsRefused(ProviderError):
    """The provider answered 401/403: TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is wrong."""


class RecordingNotFound(ProviderError):
    """The provider has no such recording (404 on fetch)."""


class NotAudio(ProviderError):
    """The answer to a recording fetch was not a WAV file."""


class RecordingTooLarge(ProviderError):
    """The recording is larger than ivr.core.provider.MAX_RECORDING_BYTES."""


class StillInProgress(ProviderError):
    """Error 20009: the call or message is not complete yet; retry with backoff."""


class BadIdentifier(ProviderError):
    """A sid does not have its exact shape, so it is never put in a URL."""


class RedirectRefused(ProviderError):
    """The media request was redirected somewhere we do not follow (or too often)."""


def error_for_status(status: int, code: int | None, action: str) -> ProviderError:
    """The exception for an HTTP error answer (with Twilio's error code, when it sent one)."""
    if code == STILL_IN_PROGRESS_CODE:
        return StillInProgress(f"could not {action}: it is not complete yet (error 20009); try again later")
    if status in (401, 403):
        return CredentialsRefused(f"could not {action}: the provider refused our credentials (HTTP {status}); "
                                  "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    if status == 429 or status >= 500:
        return ProviderUnavailable(f"could not {action}: the provider answered HTTP {status}; try again later")
    detail = f", error {code}" if code else ""
    return ProviderError(f"could not {action}: the provider answered HTTP {status}{detail}")
