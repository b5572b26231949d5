"""The baseline for the webhook benchmark: the least a WSGI app can do for a Twilio POST.

It reads the body (as any webhook handler must) and answers a tiny TwiML document, so
that under the same gunicorn settings the difference from `ivr.wsgi:app` is what our
framework, signature check, call-state token and TwiML rendering cost. Not used by the
app itself; `bench/webhook_throughput.py` serves it with `bench.bare_app:app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

BODY = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
HEADERS = [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Read the whole request body, then answer 200 with a fixed empty <Response>."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        environ["wsgi.input"].read(length)
    start_response("200 OK", HEADERS)
    return [BODY]
