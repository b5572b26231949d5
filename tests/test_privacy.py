"""Promise 2, tested: after whole calls, the caller's number is nowhere we write.

The scan reads every Redis key and value (RQ's compressed job data included), every log
line of the app and of a real worker process, and every file under the app's var folder
and the Redis data folder (its append-only file included, with the zlib streams in it
inflated). The AOF is scanned as the test left it: `redis_files` starts it afresh before
the test, and nothing rewrites it before the scan, so what was written and deleted again
is still there to be found. Planted positive controls prove the scan finds what it looks
for. Promise 5 likewise: what an SMS tipster wrote is ciphertext in Redis and on disk.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest
import redis

from dev.processes import run_worker_burst
from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, needles_for_text, scan_files, scan_lines, scan_redis

CONTROL_NUMBER = "+447700900562"
REPORT = "The blue van parked behind the leisure centre has knives in the back, it is there most evenings."
ADDED = "Registration begins with KX and the driver wears a yellow jacket."


def test_the_scan_finds_a_planted_number_in_every_form(redis_client, tmp_path: Path) -> None:
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


def test_a_number_written_and_deleted_again_is_found_in_the_aof(redis_client: redis.Redis,
                                                                redis_files: Path) -> None:
    """Short-lived data is the leak a scan of Redis alone misses: the AOF keeps it, in the
    clear and inside RQ-style compressed payloads, until something rewrites the file."""
    needles = needles_for_number(CONTROL_NUMBER)
    redis_client.set("planted:briefly", "caller 07700 900562 rang")
    redis_client.hset("planted:job", "data", zlib.compress(b"the sender was +447700900562"))
    redis_client.delete("planted:briefly", "planted:job")
    assert scan_redis(redis_client, needles) == []
    found = {hit.needle for hit in scan_files(redis_files, needles)}
    assert {"07700 900562", "+447700900562"} <= found


def test_a_redis_folder_that_does_not_exist_is_an_error_not_an_empty_scan(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="does not exist"):
        scan_files(tmp_path / "var", needles_for_number(CONTROL_NUMBER))


@pytest.mark.slow
def test_after_whole_calls_the_number_is_nowhere(twilio: TwilioLike, redis_client, redis_files: Path,
                                                 environment, settings, log_lines) -> None:
    calls = [twilio.call(CALLER_NUMBER) for _ in range(3)]
    for call, (language, category) in zip(calls, [("1", "1"), ("2", "3"), ("3", "5")], strict=True):
        leave_a_message(call, language, category)
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr

    needles = needles_for_number(CALLER_NUMBER)
    lines = log_lines.lines + worker.stderr.splitlines() + worker.stdout.splitlines()
    assert len(lines) > 5  # there were logs to scan
    # var/ is where the processes write (TMPDIR is var/tmp too); it exists, so it is read. Whether
    # the worker left a file there this time depends on its libraries (onnxruntime's session
    # file comes and goes), so the scan's own power is proved on a planted file instead.
    assert settings.var_dir.is_dir()
    hits = (scan_redis(redis_client, needles) + scan_lines(lines, needles)
            + scan_files(redis_files, needles) + scan_files(settings.var_dir, needles))
    assert hits == []

    # Provider ids: not in any key name, log line, Redis value or file in the clear.
    sids = {call.sid for call in calls} | {r.form["RecordingSid"] for call in calls for r in call.recordings}
    assert scan_redis(redis_client, sids) == []
    assert scan_lines(lines, sids) == []
    assert scan_files(redis_files, sids) == []


def test_an_sms_report_is_ciphertext_in_redis_its_jobs_and_its_aof(twilio: TwilioLike, app, redis_client,
                                                                   redis_files: Path) -> None:
    """Promise 5 for texts: the draft in the session, the stored tip and the clean-up job
    hold what the tipster wrote only as ciphertext, and so does the AOF. What to look for
    is learnt from the tip itself, opened through the TipStore, so the check looks for the
    words that were really stored."""
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT)
    in_session = needles_for_text(REPORT)
    assert scan_redis(redis_client, in_session) == [] and scan_files(redis_files, in_session) == []

    phone.sends("4"), phone.sends(ADDED), phone.sends("DONE")
    (reference,) = app.extensions["tipline"].tips.queue.tip_ids()
    stored = app.extensions["tipline"].tips.get(reference)
    assert stored.transcript == f"{REPORT}\n{ADDED}"  # what the scan below looks for was stored
    needles = needles_for_text(stored.transcript, stored_in_clear=[stored.category])
    assert scan_redis(redis_client, needles) == []
    assert scan_files(redis_files, needles) == []
