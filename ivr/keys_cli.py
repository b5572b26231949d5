"""`tipline keys`: the operator's commands for the vault's keys (README, "Keys").

    tipline keys new [--id ID]   print a fresh master key entry for VAULT_KEYS (stored nowhere)
    tipline keys list            each master key: the period keys sealed under it, and their tips
    tipline keys rewrap          queue the job that moves every tip to the current keys
"""

from __future__ import annotations

import argparse
import base64
import datetime
import secrets
import sys
from collections import Counter

from config.settings import Settings
from ivr.core import Core, build_core
from ivr.core.jobs import enqueue_key_rewrap
from ivr.core.period_keys import PeriodKeys
from ivr.core.rekeying import wrapped_key_ids
from ivr.core.vault import VaultError, period_label_of


def add_keys_commands(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own
    """Register `tipline keys ...` on the CLI's parser."""
    actions = topics.add_parser("keys", help="the vault's keys").add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="print a fresh master key entry for VAULT_KEYS")
    new.add_argument("--id", dest="key_id", default=None, help="its id (default: k<today's date>)")
    actions.add_parser("list", help="master keys, period keys and how many tips each wraps")
    actions.add_parser("rewrap", help="queue the job that moves every tip to the current keys")


def keys_command(args: argparse.Namespace) -> int:
    """Run one `tipline keys` action; 0 when done, 2 when the keys are not usable."""
    if args.action == "new":
        return _new(args.key_id)
    try:
        core = build_core(Settings.from_env())
        return _list(core) if args.action == "list" else _rewrap(core)
    except VaultError as error:
        print(f"tipline: {error}", file=sys.stderr)
        return 2


def _new(key_id: str | None) -> int:
    key_id = key_id or f"k{datetime.datetime.now(datetime.UTC):%Y%m%d}"
    if not key_id.isascii() or not key_id.replace("-", "").replace("_", "").isalnum() or period_label_of(key_id + ":"):
        print("tipline: a key id is letters, digits, - and _ (and not shaped like a period, 2026-11.1)",
              file=sys.stderr)
        return 2
    print(f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}")
    print("Put it first in VAULT_KEYS on every machine (keep the old key after it), restart, then run "
          "`tipline keys rewrap`. It is stored nowhere else: keep it in your secrets store.", file=sys.stderr)
    return 0


def _list(core: Core) -> int:
    core.check_keys_in_use()
    periods = core.tips.vault.periods
    if not isinstance(periods, PeriodKeys):
        raise TypeError("the core's vault has no period keys")
    ring = core.tips.vault.key_ring
    tips_under = Counter(wrapped_key_ids(core.redis))
    sealed = periods.sealed_under()
    for master_id in ring.key_ids:
        labels = sealed.get(master_id, [])
        period_tips = sum(tips_under[label] for label in labels)
        old_format = tips_under[master_id]
        state = "current" if master_id == ring.current_id else (
            "in use" if labels or old_format else "unused: it can be removed from VAULT_KEYS")
        print(f"master key {master_id} ({state}): {len(labels)} period key(s), {period_tips} tip(s); "
              f"{old_format} tip(s) in the old format")
        for label in labels:
            print(f"  period key {label}: {tips_under[label]} tip(s)")
    gone = sorted(label for label in tips_under if period_label_of(label + ":") and label not in
                  {label for labels in sealed.values() for label in labels})
    if gone:
        print(f"destroyed period keys still named by {sum(tips_under[label] for label in gone)} tip(s) "
              f"(shredded; unreadable): {', '.join(gone)}")
    return 0


def _rewrap(core: Core) -> int:
    job_id = enqueue_key_rewrap(core.redis)
    print(f"Queued job {job_id}: every tip moves to the current keys (master key {core.tips.vault.key_ring.current_id})"
          "; a worker runs it. `tipline keys list` shows the progress.")
    return 0
