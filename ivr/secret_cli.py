"""`tipline secret new|rotate|status`: rotating SECRET_KEY (ivr/core/secret_rotation.py)."""

from __future__ import annotations

import argparse
import secrets
import time

from config.settings import Settings
from ivr.core import Core, build_core
from ivr.core.secret_rotation import GRACE_SECONDS, rotate, status

KEY_BYTES = 48


def add_commands(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`tipline secret ...`, added to the operator's command line."""
    secret = topics.add_parser("secret", help="rotating SECRET_KEY").add_subparsers(dest="action", required=True)
    secret.add_parser("new", help="print a fresh random key (put it first in SECRET_KEY)")
    secret.add_parser("rotate", help="re-seal what depends on SECRET_KEY's older keys under the first")
    secret.add_parser("status", help="whether anything still needs SECRET_KEY's older keys, and until when")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "new":
        print(new_key())
        return 0
    core = build_core(settings)
    try:
        return rotate_command(core) if args.action == "rotate" else status_command(core)
    finally:
        core.redis.close()


def new_key() -> str:
    """A fresh SECRET_KEY or AUDIT_KEY (64 URL-safe characters: never a comma)."""
    return secrets.token_urlsafe(KEY_BYTES)


def rotate_command(core: Core) -> int:
    report = rotate(core)
    print(f"secret rotate: re-sealed {report.totp_resealed} console TOTP secret(s) and "
          f"{report.handles_resealed} waiting job handle(s); moved the PIN guard of {report.pin_guards_moved} "
          "tip(s) to the current key.")
    if report.handles_unopenable:
        print(f"secret rotate: {report.handles_unopenable} waiting job handle(s) open under no key listed; "
              "their parts need an operator if their jobs are lost.")
    if report.old_keys_needed_until is None:
        print("secret rotate: SECRET_KEY lists one key: nothing depends on an older one.")
    else:
        print(f"secret rotate: keep the older key(s) listed until {_when(report.old_keys_needed_until)} "
              f"({GRACE_SECONDS // 86400} days): recording callbacks, queued jobs, SMS sessions and "
              "enrolment links made before the rotation still need them. Then list the first key alone.")
    return 0


def status_command(core: Core) -> int:
    state = status(core)
    print(f"secret status: {state.keys_listed} key(s) listed; the current one's fingerprint is {state.fingerprint}.")
    if state.keys_listed == 1:
        print("secret status: nothing needs an older key.")
    elif state.rotated_at is None:
        print("secret status: the older key(s) are needed: `tipline secret rotate` has not run for the current key.")
    elif state.old_keys_needed(time.time()):
        print(f"secret status: the older key(s) are needed until {_when(state.old_keys_needed_until or 0)}.")
    else:
        print("secret status: nothing needs the older key(s) any more: list the first key alone.")
    return 0


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))
