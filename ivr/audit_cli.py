"""The operator's check of the audit trail, as the CLI runs it."""

from __future__ import annotations

from config.settings import Settings
from ivr.core import connect_redis, keys
from ivr.core.audit import AuditLog

HEAD_DIGITS = 16  # enough of the head's MAC to recognise it again in the operator's log


def verify_command(settings: Settings) -> int:
    """Check the whole trail; print a one-line verdict (after each problem, if any); 0 when intact, else 1.

    The verdict names the head (`seq:MAC prefix`): kept in the operator's log, it is the
    outside anchor that exposes a rollback of the trail.
    """
    connection = connect_redis(settings)
    try:
        report = AuditLog(connection, settings.audit_keys).verify()
    finally:
        connection.close()
    if report.ok and report.head is not None:
        seq, mac = report.head
        print(f"audit trail: {report.entries:,} entr{'y' if report.entries == 1 else 'ies'}, chain intact; "
              f"head {seq}:{mac[:HEAD_DIGITS]}")
        return 0
    for problem in report.problems:
        print(problem)
    print(f"audit trail: {len(report.problems)} problem(s) found")
    return 1


def reseal_command(settings: Settings, operator: str) -> int:
    """Set a damaged trail aside and start a new one (the console stops until this is done)."""
    connection = connect_redis(settings)
    try:
        log = AuditLog(connection, settings.audit_keys)
        report = log.verify()
        if report.ok:
            print("audit trail: the chain is intact; there is nothing to reseal.")
            return 1
        for problem in report.problems:
            print(problem)
        number = log.reseal(operator)
        seq, mac = log.head()
    finally:
        connection.close()
    print(f"audit trail: the damaged trail is kept as archive {number} (Redis key {keys.audit_archive(number)}); "
          f"a new trail starts with that fact; head {seq}:{mac[:HEAD_DIGITS]}")
    return 0


def rotate_command(settings: Settings, operator: str) -> int:
    """With AUDIT_KEY=new,old: record the change in the trail under the old key; chain under the new from here."""
    if len(settings.audit_keys) < 2:
        print("audit rotate: list the new key first and the current one after it (AUDIT_KEY=new,old), "
              "then run this again; `tipline secret new` makes a key.")
        return 1
    connection = connect_redis(settings)
    try:
        log = AuditLog(connection, settings.audit_keys)
        entry = log.rotate(operator)
        seq, mac = log.head()
    finally:
        connection.close()
    if entry is None:
        print(f"audit rotate: the trail is under the first AUDIT_KEY already; head {seq}:{mac[:HEAD_DIGITS]}")
        return 0
    print(f"audit rotate: entry {entry.seq} records the change ({entry.detail}), under the old key; the trail is "
          f"chained under the new key from here; head {seq}:{mac[:HEAD_DIGITS]}. Keep the old key listed after "
          "the new one for `tipline audit verify` to check the entries before the change.")
    return 0
