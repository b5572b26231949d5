"""`tipline provider`: the line's numbers at Twilio, configured and checked (README,
"Going live", "The number").

    tipline provider setup --number +44...   webhooks at PUBLIC_BASE_URL (POST); no status callbacks
    tipline provider check [--json]          each number: what is right, what to fix (exit 1 if anything)
    tipline provider fallback-twiml          the TwiML for VOICE_FALLBACK_URL (serve it by POST, e.g. a TwiML Bin)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from config.settings import Settings
from ivr.core.provider_errors import ProviderError
from ivr.core.provider_numbers import LineNumber, LineNumbers, Wanted, fallback_twiml, findings


def add_parser(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own
    """Register `tipline provider ...` on the CLI's parser."""
    actions = topics.add_parser("provider", help="the line's numbers at Twilio").add_subparsers(
        dest="action", required=True)
    setup = actions.add_parser("setup", help="point a number's webhooks at PUBLIC_BASE_URL (POST), clear callbacks")
    setup.add_argument("--number", required=True, help="the line's number, as Twilio shows it (+44...)")
    check = actions.add_parser("check", help="what each number has configured and what needs fixing")
    check.add_argument("--json", action="store_true", help="the findings as JSON")
    actions.add_parser("fallback-twiml", help="print the TwiML for the voice fallback URL")


def provider_command(args: argparse.Namespace) -> int:
    """Run one `tipline provider` action: 0 done (or nothing to fix), 1 something to fix, 2 it could not."""
    if args.action == "fallback-twiml":
        print(fallback_twiml())
        print("Serve this by POST from somewhere that keeps no request bodies (a TwiML Bin), never by GET: "
              "a GET puts the caller's number in the URL and every access log. Then set VOICE_FALLBACK_URL "
              "and run `tipline provider setup` again.", file=sys.stderr)
        return 0
    settings = Settings.from_env()
    try:
        numbers = LineNumbers(settings)
        if args.action == "setup":
            return _setup(numbers, settings, args.number)
        return _check(numbers, settings, args.json)
    except ProviderError as error:
        print(f"tipline: {error}", file=sys.stderr)
        return 2


def _setup(numbers: LineNumbers, settings: Settings, phone_number: str) -> int:
    configured = numbers.configure(phone_number)
    print(f"{configured.phone_number}: configured.")
    return _report([configured], Wanted.from_settings(settings))


def _check(numbers: LineNumbers, settings: Settings, as_json: bool) -> int:
    wanted = Wanted.from_settings(settings)
    listed = numbers.all()
    if as_json:
        print(json.dumps([{"phone_number": n.phone_number, "sid": n.sid,
                           "findings": [asdict(f) for f in findings(n, wanted)]} for n in listed], indent=2))
        return 1 if any(not f.fine for n in listed for f in findings(n, wanted)) else 0
    if not listed:
        print("The account has no phone numbers.")
        return 1
    return _report(listed, wanted)


# What these commands print is the line's own: its Twilio numbers and their PN sids, which
# the operator is configuring. No caller's number or call sid is ever read here, and nothing
# printed is logged or stored (print to the operator's terminal only).
def _report(listed: list[LineNumber], wanted: Wanted) -> int:
    to_fix = []
    for number in listed:
        print(f"{number.phone_number} ({number.sid})")
        found = findings(number, wanted)
        for finding in found:
            print(f"  {'✓' if finding.fine else '✗'} {finding.text}")
        if not all(f.fine for f in found):
            to_fix.append(number.phone_number)
    if to_fix:
        print(f"{len(to_fix)} number(s) need fixing: `tipline provider setup --number N` fixes the webhooks and "
              "callbacks; the rest is in Twilio's console.")
        return 1
    print("Every number is configured as the line needs.")
    return 0
