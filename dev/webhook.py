"""Send one signed webhook to a running Tipline and print the answer (`python -m dev.webhook PATH`).

For a first look after `make run`:  .venv/bin/python -m dev.webhook /voice/incoming
It signs with the same settings the app uses (var/dev-secrets.json in development) and
sends a withheld number, so nothing identifying is ever typed. It posts to the
PUBLIC_BASE_URL of the `make run` that is running (var/run.json) unless the environment
sets one.
"""

from __future__ import annotations

import argparse
import sys

from config.settings import Settings, SettingsError
from dev.twilio.calls import TwilioLike, new_sid
from dev.twilio.http_transport import http_post


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Example: .venv/bin/python -m dev.webhook /voice/incoming")
    parser.add_argument("path", help="e.g. /voice/incoming")
    parser.add_argument("field", nargs="*", help="extra form fields as NAME=VALUE, e.g. Digits=1")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"dev.webhook: {error}", file=sys.stderr)
        return 2
    twilio = TwilioLike(http_post, settings.public_base_url, settings.twilio_account_sid, settings.twilio_auth_token)
    form = {"AccountSid": settings.twilio_account_sid, "CallSid": new_sid("CA"), "From": "anonymous",
            "Caller": "anonymous", "To": "+448005550111", "CallStatus": "ringing", "Direction": "inbound"}
    form.update(dict(item.split("=", 1) for item in args.field))
    try:
        answer = twilio.post(args.path, form)
    except OSError as error:  # refused, reset, timed out (URLError is one)
        reason = getattr(error, "reason", error)
        print(f"dev.webhook: nothing answers at {settings.public_base_url} ({reason}). Start Tipline with "
              "`make run`, or set PUBLIC_BASE_URL to where it runs.", file=sys.stderr)
        return 3
    print(f"HTTP {answer.status}")
    print(answer.body)
    return 0 if answer.status < 400 else 1


if __name__ == "__main__":
    raise SystemExit(main())
