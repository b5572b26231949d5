"""`tipline retention plan|run [--as-of YYYY-MM-DD]`: the retention rules from the command line.

    tipline retention plan [--as-of DATE]    how many tips a run would delete, by outcome and month
    tipline retention run [--as-of DATE]     delete them (the clock does this daily), print the counts

Counts only: never a reference, never a word of a tip.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from config.settings import Settings
from ivr.core import build_core
from ivr.core.audit import AuditTrailBroken
from ivr.core.retention import RetentionCounts, retention_of

OPERATOR = "operator"


def add_parser(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `retention plan` and `retention run` on the CLI's topics."""
    retention = topics.add_parser("retention", help="delete tips whose time is up").add_subparsers(
        dest="action", required=True)
    for action, text in (("plan", "how many tips a run would delete"),
                         ("run", "delete the tips whose time is up")):
        command = retention.add_parser(action, help=text)
        command.add_argument("--as-of", type=_day, default=None, metavar="YYYY-MM-DD",
                             help="judge ages as on this day (default: now)")


def retention_command(settings: Settings, args: argparse.Namespace) -> int:
    retention = retention_of(build_core(settings))
    as_of = args.as_of or datetime.now(UTC)
    if args.action == "plan":
        counts = retention.plan(as_of)
        print(f"A retention run as of {as_of.date().isoformat()} would delete {counts.total} tip(s):")
    else:
        try:
            counts = retention.run(as_of, OPERATOR)
        except AuditTrailBroken as error:
            print(f"tipline: nothing was deleted: {error}", file=sys.stderr)
            return 1
        print(f"Retention as of {as_of.date().isoformat()} deleted {counts.total} tip(s):")
    print(table(counts))
    return 0


def table(counts: RetentionCounts) -> str:
    """The counts as a small table: outcome, month, tips."""
    lines = [f"{'outcome':12} {'month':8} {'tips':>5}"]
    rows = sorted(counts.by_outcome_month.items())
    lines += [f"{outcome:12} {month:8} {count:>5}" for (outcome, month), count in rows]
    lines.append(f"{'total':21} {counts.total:>5}")
    if counts.open_past:
        lines.append(f"Kept: {counts.open_past} open tip(s) older than the retention period; nobody passed them on "
                     "or closed them (see the deadlines page).")
    return "\n".join(lines)


def _day(raw: str) -> datetime:
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a day as YYYY-MM-DD, not {raw!r}") from None
