"""An HTTP transport for `dev.twilio.calls`: POSTs to a running Tipline, as Twilio would."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

TIMEOUT_SECONDS = 15  # what Twilio waits for a webhook


def http_post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    # The URL comes from the app's TwiML: follow http(s) only, never file: or a custom scheme.
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"refusing to POST to {url!r}: only http:// and https:// URLs are followed")
    request = urllib.request.Request(
        url, data=urlencode(form).encode(), method="POST",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # nosec B310  # scheme checked above
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
