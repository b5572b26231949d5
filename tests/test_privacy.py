"""Promise 2, tested: after whole calls, the caller's number is nowhere we write.

The scan reads every Redis key and value (RQ's compressed job data included), every log
line of the app and of a real worker process, and every file under the app's var folder
and the Redis data folder (its append-only file included). A planted positive control
proves the scan finds what it looks for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dev.twilio_like import TwilioLike
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from tests.processes import run_worker_burst

CONTROL_NUMBER = "+447700900562"


def test_the_scan_finds_a_planted_number_in_every_form(redis_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import zlib

    needles = needles_for_number(CONTROL_NUMBER)
    redis_client.set("planted:plain", "caller 07700 900562 rang")
    redis_client.hset("planted:hash", "h", hashlib.sha256(b"+447700900562").hexdigest())
    redis_client.rpush("planted:zlib", zlib.compress(b"from=447700900562"))
    redis_client.xadd("planted:stream", {"tail": "900562"})
    (tmp_path / "aof").write_bytes(b"SET x 07700900562\r\n")
    assert len({hit.where.split()[1] for hit in scan_redis(redis_client, needles)}) >= 4
    assert scan_files(tmp_path, needles)
    assert scan_lines(["a log line with +44 7700 900562 in it"], needles)
    assert not scan_lines(["nothing here: reference 40739184450, 2026-11-25T07:00Z"], needles)


@pytest.mark.slow
def test_after_whole_calls_the_number_is_nowhere(twilio: TwilioLike, redis_client, redis_server, environment,  # type: ignore[no-untyped-def]
                                                 settings, log_lines) -> None:
    calls = [twilio.call(CALLER_NUMBER) for _ in range(3)]
    for call, (language, category) in zip(calls, [("1", "1"), ("2", "3"), ("3", "5")]):
        leave_a_message(call, language, category)
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr
    redis_client.bgrewriteaof()

    needles = needles_for_number(CALLER_NUMBER)
    lines = log_lines.lines + worker.stderr.splitlines() + worker.stdout.splitlines()
    assert len(lines) > 5  # there were logs to scan
    hits = (scan_redis(redis_client, needles) + scan_lines(lines, needles)
            + scan_files(redis_server.data_dir, needles)
            + (scan_files(settings.var_dir, needles) if settings.var_dir.exists() else []))
    assert hits == []

    # Provider ids: not in any key name, log line or Redis value in the clear.
    sids = {call.sid for call in calls} | {r.form["RecordingSid"] for call in calls for r in call.recordings}
    assert scan_redis(redis_client, sids) == []
    assert scan_lines(lines, sids) == []
