"""Backups (issue 12): create, wipe, restore, and the hotline is as it was; what is left out stays out.

Real Redis, real webhooks through the edge, the console's own casework; the commands run
through `tipline` (ivr/cli.py) with the test's environment.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import shutil
from pathlib import Path

import pytest
import redis

from dev.twilio.calls import Call, TwilioLike
from dev.twilio.texts import Phone
from ivr import cli
from ivr.core import backups, keys
from ivr.core.backups import DATA_FILE, LEFT_OUT, MANIFEST_FILE, BackupError, left_out
from ivr.core.dump_payloads import crc64
from ivr.core.handler_queue import GROUP
from tests.conftest import CALLER_NUMBER
from tests.console_people import a_texted_tip
from tests.privacy import needles_for_number, scan_files

REPORT = "Two men sell from a grey Golf outside the chip shop on Mare Street most evenings, around nine."
TEXTER = "+447700900286"
STILL_TEXTING = "+447700900731"


@pytest.fixture
def tipline(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """`tipline ...` as an operator runs it, with this test's environment."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return lambda *argv: cli.main(list(argv))


def the_hotline_at_work(caller: Call, twilio: TwilioLike, core, casework) -> str:
    """A called tip, two texted ones (one claimed and asked about), a conversation still open,
    an audit entry; returns the claimed tip's reference."""
    caller.dials().presses("1").presses("1").records(seconds=30)
    a_texted_tip(twilio, "+447700900222", REPORT)
    a_texted_tip(twilio, TEXTER, REPORT)
    Phone(twilio, STILL_TEXTING).sends("hello")  # a conversation in progress: session, rate, seen, idle
    claimed = casework.claim_next("sam")
    assert claimed is not None
    core.follow_up.ask(claimed, "sam", "Which door do they use?")
    core.audit.append("operator", "account_created", detail="name=sam")
    return claimed


def the_state(client: redis.Redis) -> dict[str, object]:
    """What must come back: tips, queues and their leases, RQ's queued jobs, the audit head."""
    streams = {}
    for stream in keys.HANDLER_QUEUES:
        if client.exists(stream):
            groups = [{k: v for k, v in g.items() if k != "lag"} for g in client.xinfo_groups(stream)]
            pending = [(p["message_id"], p["consumer"]) for p in client.xpending_range(stream, GROUP, "-", "+", 100)]
            streams[stream] = (client.xrange(stream), groups, pending)
    return {
        "tips": sorted(k for k in client.keys("tipline:tip:*")),
        "streams": streams,
        "jobs": {q: client.lrange(q, 0, -1) for q in client.keys("rq:queue:*")},
        "audit": (client.llen(keys.AUDIT_TRAIL), client.get(keys.AUDIT_HEAD)),
    }


def test_create_wipe_restore_and_every_tip_opens_with_its_trail_queues_and_leases(
        caller: Call, twilio: TwilioLike, core, casework, redis_client: redis.Redis, tipline, tmp_path: Path) -> None:
    # Given a hotline at work, with an SMS conversation still open
    claimed = the_hotline_at_work(caller, twilio, core, casework)
    before = the_state(redis_client)
    assert len(before["tips"]) == 3 and redis_client.keys("tipline:sms:session:*")
    assert any(pending for _, _, pending in before["streams"].values())  # the claim is a pending entry

    # When the operator backs up, Redis is lost, and the backup is restored
    folder = tmp_path / "backup"
    assert tipline("backup", "create", str(folder)) == 0
    assert tipline("backup", "verify", str(folder)) == 0
    redis_client.flushall()
    assert tipline("backup", "restore", str(folder)) == 0

    # Then every tip opens, the audit trail verifies, and the queues and leases are as they were
    assert the_state(redis_client) == before
    for name in before["tips"]:
        reference = name.decode().removeprefix("tipline:tip:")
        assert core.tips.get(reference) is not None
    assert core.audit.verify().ok
    assert casework.claim_next("alex") != claimed  # sam's lease came back with the stream
    # and nothing named by a session key came back
    assert not [name for name in redis_client.keys("*") if left_out(name.decode())]


def test_the_backup_is_private_holds_no_session_key_and_no_number(
        caller: Call, twilio: TwilioLike, core, casework, redis_client: redis.Redis, tipline, tmp_path: Path) -> None:
    the_hotline_at_work(caller, twilio, core, casework)
    folder = tmp_path / "backup"
    assert tipline("backup", "create", str(folder)) == 0

    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {DATA_FILE: 0o600, MANIFEST_FILE: 0o600}
    names = [json.loads(line)["name"] for line in (folder / DATA_FILE).read_text().splitlines()]
    assert names and not [name for name in names if name.startswith("tipline:sms:") and left_out(name)]
    assert not [name for name in names if name.startswith(tuple(LEFT_OUT))]
    # The payloads are base64 in the file: scan them decoded as well, as RESTORE would see them.
    decoded = tmp_path / "decoded"
    decoded.mkdir()
    for number, line in enumerate((folder / DATA_FILE).read_text().splitlines()):
        (decoded / str(number)).write_bytes(base64.b64decode(json.loads(line)["payload"]))
    needles = needles_for_number(TEXTER) | needles_for_number(STILL_TEXTING) | needles_for_number(CALLER_NUMBER)
    assert scan_files(folder, needles) == [] and scan_files(decoded, needles) == []
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["keys"] == len(names) and manifest["created_hour"].endswith(":00Z")
    assert {entry["prefix"] for entry in manifest["left_out"]} == set(LEFT_OUT)


def test_every_key_named_by_a_session_key_is_left_out() -> None:
    named_by_session = [f for _, f in inspect.getmembers(keys, inspect.isfunction)
                        if "session_key" in inspect.signature(f).parameters]
    assert len(named_by_session) >= 4  # session, closed, returning, rate
    for key_name in named_by_session:
        assert left_out(key_name("0" * 64)), f"{key_name.__name__} would be backed up"
    assert left_out(keys.SMS_IDLE) and left_out(keys.sms_seen("0" * 64))
    assert not left_out(keys.tip("12345678901")) and not left_out(keys.AUDIT_TRAIL)


def test_verify_finds_a_flipped_byte_and_a_damaged_payload(redis_client: redis.Redis, tmp_path: Path) -> None:
    redis_client.hset(keys.tip("12345678901"), mapping={"status": "new", "text": "x" * 200})
    redis_client.xadd(keys.HANDLER_QUEUE, {"tip": "12345678901"})
    good = tmp_path / "good"
    backups.create(redis_client, good)
    assert backups.verify(good).keys == 2

    flipped = tmp_path / "flipped"
    shutil.copytree(good, flipped)
    data = bytearray((flipped / DATA_FILE).read_bytes())
    data[40] ^= 0x01
    (flipped / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(BackupError, match="SHA-256"):
        backups.verify(flipped)

    # A payload damaged and the manifest's digest made to match: the payload's own checksum catches it.
    lines = (good / DATA_FILE).read_bytes().splitlines()
    record = json.loads(lines[0])
    payload = bytearray(base64.b64decode(record["payload"]))
    payload[3] ^= 0x01
    record["payload"] = base64.b64encode(bytes(payload)).decode()
    lines[0] = json.dumps(record).encode()
    forged = tmp_path / "forged"
    shutil.copytree(good, forged)
    (forged / DATA_FILE).write_bytes(b"\n".join(lines) + b"\n")
    manifest = json.loads((forged / MANIFEST_FILE).read_text())
    manifest["data_sha256"] = hashlib.sha256((forged / DATA_FILE).read_bytes()).hexdigest()
    (forged / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="checksum"):
        backups.verify(forged)


def test_restore_refuses_a_redis_with_data_but_not_one_with_only_left_out_kinds(
        redis_client: redis.Redis, tipline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    redis_client.hset(keys.tip("12345678901"), "status", "new")
    folder = tmp_path / "backup"
    assert tipline("backup", "create", str(folder)) == 0
    assert tipline("backup", "restore", str(folder)) == 1
    assert "already holds 1 key(s)" in capsys.readouterr().err
    redis_client.flushall()
    redis_client.hset(keys.sms_session("ab" * 32), "stage", "language")  # a texter who wrote meanwhile
    assert tipline("backup", "restore", str(folder)) == 0
    assert redis_client.hget(keys.tip("12345678901"), "status") == b"new"


def test_create_refuses_a_folder_that_holds_something(redis_client: redis.Redis, tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("x")
    with pytest.raises(BackupError, match="not an empty folder"):
        backups.create(redis_client, tmp_path / "old")


def test_a_payload_is_checked_with_redis_s_own_crc64(redis_client: redis.Redis) -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    redis_client.set("tipline:probe", "value")
    payload = redis_client.dump("tipline:probe")
    assert crc64(payload[:-8]) == int.from_bytes(payload[-8:], "little")


def test_a_long_backup_shows_progress(redis_client: redis.Redis, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backups, "PROGRESS_EVERY", 100)
    monkeypatch.setattr(backups, "BATCH", 50)
    with redis_client.pipeline() as pipe:
        for number in range(250):
            pipe.hset(keys.tip(f"{number:011d}"), "status", "new")
        pipe.execute()
    lines: list[str] = []
    assert backups.create(redis_client, tmp_path / "b", lines.append).keys == 250
    assert "copying: 100 of 250 keys" in lines and "copying: 250 of 250 keys" in lines
