"""`tipline backup create|verify|restore PATH`, as the CLI runs them (ivr/core/backups.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.settings import Settings
from ivr.core import connect_redis
from ivr.core.backups import BackupError, Summary, create, restore, verify


def add_parser(topics: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`backup create|verify|restore PATH` under the `tipline` command."""
    backup = topics.add_parser("backup", help="backups of the hotline's data").add_subparsers(
        dest="action", required=True)
    for action, text in (("create", "write a consistent backup into a new folder PATH"),
                         ("verify", "check a backup without restoring it"),
                         ("restore", "load a backup into an empty Redis")):
        backup.add_parser(action, help=text).add_argument("path", type=Path)


def _progress(line: str) -> None:
    print(f"tipline backup: {line}", file=sys.stderr, flush=True)


def _describe(summary: Summary) -> str:
    kinds = ", ".join(f"{name} {count:,}" for name, count in summary.kinds.items())
    return f"{summary.keys:,} keys ({kinds or 'none'}); made {summary.manifest.get('created_hour')}"


def backup_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one backup action; 0 on success, 1 with the reason on stderr otherwise."""
    path: Path = args.path
    try:
        if args.action == "verify":
            print(f"backup {path} is intact: {_describe(verify(path, _progress))}")
            return 0
        connection = connect_redis(settings)
        try:
            if args.action == "create":
                print(f"backup written to {path}: {_describe(create(connection, path, _progress))}")
            else:
                print(f"backup {path} restored: {_describe(restore(connection, path, _progress))}")
        finally:
            connection.close()
    except BackupError as error:
        print(f"tipline backup: {error}", file=sys.stderr)
        return 1
    return 0
