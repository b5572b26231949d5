"""`tipline provider`: the line's numbers at Twilio, configured and checked (README,
"Going live", "The number").

    tipline provider setup --number +44...   webhooks at PUBLIC_BASE_URL (POST); no status callbacks
    tipline provider check [--json]          each number and the account: what is right, what to fix
                                             (exit 1 if anything; 2 if anything could not be checked)
    tipline provider fallback-twiml          the TwiML for VOICE_FALLBACK_URL (serve it by POST, e.g. a TwiML Bin)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from config.settings import Settings
from ivr.core.provider_account import AccountSettings
from ivr.core.provider_errors import ProviderError
from ivr.core.provider_numbers import Finding, LineNumber, LineNumbers, Wanted, fallback_twiml, findings


def add_parser(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own
    """Register `tipline provider ...` on the CLI's parser."""
    actions = topics.add_parser("provider", help="the line's numbers at Twilio").add_subparsers(
        dest="action", required=True)
    setup = actions.add_parser("setup", help="point a number's webhooks at PUBLIC_BASE_URL (POST), clear callbacks")
    setup.add_argument("--number", required=True, help="the line's number, as Twilio shows it (+44...)")
    check = actions.add_parser("check", help="what each number and the account have configured and what needs fixing")
    check.add_argument("--json", action="store_true", help="the findings as JSON")
    actions.add_parser("fallback-twiml", help="print the TwiML for the voice fallback URL")


def provider_command(args: argparse.Namespace) -> int:
    """Run one `tipline provider` action: 0 done (or nothing to fix), 1 something to fix, 2 it could not
    (or could not check everything)."""
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
    return _report([(configured, findings(configured, Wanted.from_settings(settings)))], None)


def _check(numbers: LineNumbers, settings: Settings, as_json: bool) -> int:
    wanted = Wanted.from_settings(settings)
    per_number = [(number, findings(number, wanted)) for number in numbers.all()]
    account = AccountSettings(settings).findings()
    if as_json:
        print(json.dumps({"numbers": [{"phone_number": n.phone_number, "sid": n.sid,
                                       "findings": [asdict(f) for f in found]} for n, found in per_number],
                          "account": [asdict(f) for f in account]}, indent=2))
        return _status([f for _, found in per_number for f in found] + account, bool(per_number))
    if not per_number:
        print("The account has no phone numbers.")
    return _report(per_number, account)


def _status(found: list[Finding], has_numbers: bool) -> int:
    """2 when anything could not be checked, 1 when anything needs fixing (or there is no number), else 0."""
    if not all(f.checked for f in found):
        return 2
    return 0 if has_numbers and all(f.fine for f in found) else 1


def _mark(finding: Finding) -> str:
    return "✓" if finding.fine else "✗" if finding.checked else "?"


# What these commands print is the line's own: its Twilio numbers and their PN sids, the
# sids of its trunks and services, which the operator is configuring. No caller's number
# or call sid is ever read here, and nothing printed is logged or stored (print to the
# operator's terminal only).
def _report(per_number: list[tuple[LineNumber, list[Finding]]], account: list[Finding] | None) -> int:
    """Print the findings (`account`: None when the account-wide settings were not looked at)."""
    to_fix = []
    for number, found in per_number:
        print(f"{number.phone_number} ({number.sid})")
        for finding in found:
            print(f"  {_mark(finding)} {finding.text}")
        if not all(f.fine for f in found):
            to_fix.append(number.phone_number)
    if account is not None:
        print("The account (every number)")
        for finding in account:
            print(f"  {_mark(finding)} {finding.text}")
    if to_fix:
        print(f"{len(to_fix)} number(s) need fixing: `tipline provider setup --number N` fixes the webhooks, "
              "callbacks and caller-name lookup; the rest is in Twilio's console.")
    if account is not None and not all(f.fine for f in account if f.checked):
        print("The account's settings need fixing in Twilio's console.")
    status = _status([f for _, found in per_number for f in found] + (account or []), bool(per_number))
    if status == 2:
        print("Some settings could not be checked (?): look at them by hand, or run the check again.")
    elif status == 0:
        print("Every number, and the account, is configured as the line needs." if account is not None else
              "The number is configured as the line needs.")
    return status
