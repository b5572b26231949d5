"""`tipline health [--json]`: is the line healthy? For a person, a short table; for a
machine (cron, a container's health check), JSON. Exit 0 all ok or warnings, 1 any
failure, 2 Redis cannot be reached (then nothing else can be checked)."""

from __future__ import annotations

import argparse
import json

from config.settings import Settings
from ivr.core import build_core
from ivr.core.health_report import FAIL, HealthReport, line_health

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def add_parser(topics: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's own
    """Register `tipline health` on the CLI's parser."""
    health = topics.add_parser("health", help="Redis, workers, clock, queues, provider: exit 1 if unhealthy")
    health.add_argument("--json", action="store_true", help="the report as JSON")


def health_command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; 0 healthy (warnings allowed), 1 unhealthy, 2 Redis unreachable."""
    report = line_health(build_core(settings))
    print(json.dumps(report.as_dict(), indent=2) if args.json else table(report))
    if not report.redis_reachable:
        return 2
    return 1 if report.status == FAIL else 0


def table(report: HealthReport) -> str:
    """The report as a short table, one check a line, what to do beneath a check that is not ok."""
    if not report.redis_reachable:
        return "Redis cannot be reached: nothing else can be checked. Start Redis or fix REDIS_URL."
    width = max(len(check.name) for check in report.checks)
    lines = []
    for check in report.checks:
        lines.append(f"{MARKS[check.status]}  {check.name:{width}}  {check.value}")
        if check.action:
            lines.append(f"      {'':{width}}  -> {check.action}")
    lines.append(f"overall: {report.status}")
    return "\n".join(lines)
