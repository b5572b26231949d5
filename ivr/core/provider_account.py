"""The provider's account-wide settings that reach every call, whichever number it came to:
what `tipline provider check` finds wrong with them.

A Voice Intelligence service with Auto-transcribe on transcribes every call recording of
the account and keeps the transcript at Twilio, outside our deletion (and with Data
logging on, Twilio may use it to train its models). An account without the product
answers 404 to the list: it has none. Any other failure is reported as not checked,
never as fine.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from ivr.core.provider import rest_call, rest_client
from ivr.core.provider_errors import CredentialsRefused, ProviderError
from ivr.core.provider_numbers import Finding, is_on

BY_HAND = ("in Twilio's console, Voice Intelligence > Services, make sure no service has Auto-transcribe on "
           "(it transcribes every call recording and keeps the transcripts at Twilio)")


class AccountSettings:
    """The account-wide settings `tipline provider check` looks at."""

    def __init__(self, settings: Settings, timeout_seconds: float = 10.0) -> None:
        self._client = rest_client(settings, timeout_seconds)

    def findings(self) -> list[Finding]:
        """What is right, what needs fixing and what could not be checked, account-wide."""
        return self._intelligence()

    def _intelligence(self) -> list[Finding]:
        try:
            services: list[Any] | None = rest_call(lambda: list(self._client.intelligence.v2.services.stream()),
                                                   "list the Voice Intelligence services", missing_is_success=True)
        except CredentialsRefused:
            return [Finding(False, "Voice Intelligence services could not be checked: the provider refused to list "
                                   "them (HTTP 401/403; the credentials may not reach Voice Intelligence); "
                                   + BY_HAND, checked=False)]
        except ProviderError as error:
            return [Finding(False, f"Voice Intelligence services could not be checked ({error}); " + BY_HAND,
                            checked=False)]
        if services is None:
            return [Finding(True, "no Voice Intelligence services (the account does not have the product)")]
        if not services:
            return [Finding(True, "no Voice Intelligence services (nothing transcribes calls at Twilio)")]
        return [_service_finding(service) for service in services]


def _service_finding(service: Any) -> Finding:
    label = service.unique_name or service.friendly_name
    name = f"Voice Intelligence service {f'{label} ({service.sid})' if label else service.sid}"
    logging_on = is_on(service.data_logging)
    if not is_on(service.auto_transcribe):
        return Finding(True, f"{name}: Auto-transcribe off" + (
            "; its Data logging is on: turn it off too, in case the service is ever used" if logging_on else ""))
    return Finding(False, f"{name} transcribes every call recording of the account (Auto-transcribe on) and "
                          "keeps the transcripts at Twilio, outside our deletion: turn Auto-transcribe off there, "
                          "or delete the service" + (
                              "; its Data logging is on too (Twilio may use the recordings and transcripts to "
                              "train its models): turn it off" if logging_on else ""))
