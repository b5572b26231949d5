"""Retention: tips passed on or closed long enough ago are deleted, a tombstone stays.

Real Redis, the app's own core and casework; time is the core's clock (`core.tips.clock`)
when tips arrive and are finished, and `as_of` for runs: nothing sleeps.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from config.settings import RetentionSettings, SettingsError
from dev.redis_server import RedisServer
from dev.twilio.texts import Phone
from ivr import cli
from ivr.core import backups, jobs, keys
from ivr.core.audit_chain import GENESIS, AuditEntry, head_record
from ivr.core.coarse_time import current_hour
from ivr.core.handler_queue import HandlerQueue
from ivr.core.prompts import CALLING_BACK_KEY, load_menus
from ivr.core.retention import due_outcome, retention_of
from ivr.core.statuses import PartStatus
from ivr.core.tips import ShreddedTip, TipStore, utc_now
from tests.privacy import redis_blobs
from workers.retention_daily import run_daily_retention

MENUS = load_menus()
REPORT = "Two men sell cocaine from a grey Golf outside the chip shop on Mare Street most evenings."
CODES = re.compile(r"(\d{11})\D+(\d{6})\b")
AS_OF = datetime(2027, 12, 1, 9, tzinfo=UTC)
DELETED_VOICE = MENUS.catalogue("en").text("report_deleted")
DELETED_SMS = MENUS.sms_text(None, "report_deleted")
REFUSED_VOICE = MENUS.catalogue("en").text("returning_refused")
REFUSED_SMS = MENUS.sms_text(None, "returning_refused")
KEPT_RECORDING = "RE" + "7" * 32
_numbers = iter(range(100, 999))


@pytest.fixture
def at(core) -> Iterator[list[datetime]]:
    """Set `at[0]` to move the core's "now" for tips arriving and being finished."""
    now = [AS_OF]
    core.tips.clock = lambda: now[0]
    yield now
    core.tips.clock = utc_now


def texted_tip(twilio, at: list[datetime], when: datetime) -> tuple[str, str]:
    """A tip texted at `when` (its own number: a text just after DONE would join the last); (reference, PIN)."""
    at[0] = when
    phone = Phone(twilio, f"+447700900{next(_numbers)}")
    phone.sends("Hello")
    phone.sends("1")
    phone.sends("1")
    codes = CODES.search(phone.sends(REPORT))
    assert codes, "no reference and PIN in the reply"
    phone.sends("DONE")
    return codes.group(1), codes.group(2)


def closed(casework, at: list[datetime], reference: str, when: datetime) -> None:
    at[0] = when
    assert casework.claim_next("sam") == reference
    casework.close(reference, "sam", next(iter(casework._catalogue.close_reasons)))


def passed_on(casework, at: list[datetime], reference: str, when: datetime, claimed: bool = False) -> None:
    at[0] = when
    assert claimed or casework.claim_next("sam") == reference
    catalogue = casework._catalogue
    casework.save_summary(reference, "sam", "Reported activity at a shop.", next(iter(catalogue.areas)),
                          next(iter(catalogue.categories)))
    casework.pass_on(reference, "sam", next(iter(catalogue.partners)), set(), casework.case(reference).summary_version)


def legacy_entry(redis_client: redis.Redis, core, who: str, action: str, tip: str | None) -> None:
    """An entry as the trail was written before tips were named by digest: the reference in clear."""
    chain = core.audit.chain
    raw_head = redis_client.get(keys.AUDIT_HEAD)
    seq, mac = (0, GENESIS) if raw_head is None else core.audit.head()
    entry = AuditEntry(seq=seq + 1, hour=current_hour(), who=who, action=action, tip=tip, detail="", mac="")
    entry = AuditEntry(**{**entry.__dict__, "mac": chain.mac(mac, entry.signed_bytes())})
    redis_client.rpush(keys.AUDIT_TRAIL, entry.to_json())
    redis_client.set(keys.AUDIT_HEAD, head_record(chain, entry.seq, entry.mac))


def secrets_of(redis_client: redis.Redis, reference: str) -> set[bytes]:
    """Everything of a tip that must not outlive it: its wrapped key, ciphertexts, PIN hash."""
    found = set()
    for key in (keys.tip(reference), keys.case(reference), keys.questions(reference)):
        for field, value in redis_client.hgetall(key).items():
            if field.decode() in ("wrapped_key", "pin_hash") or field.decode().startswith(
                    ("summary", "note:", "draft:", "q:")) or field.endswith((b":transcript", b":audio", b":job")):
                if len(value) >= 16 and not field.decode().endswith(":state"):
                    found.add(value)
    return found


def failed_job_naming(redis_client: redis.Redis, reference: str) -> str:
    """A reviewed-recordings deletion for `reference` that failed every retry (kept 30 days)."""
    queue = Queue(keys.QUEUE_RECORDINGS, connection=redis_client)
    job = queue.enqueue_call(jobs.DELETE_REVIEWED_RECORDINGS, args=(reference,))
    queue.remove(job)
    FailedJobRegistry(queue=queue).add(job, ttl=jobs.FAILED_JOB_TTL, exc_string="the provider was away")
    return job.id


# -- the whole story ----------------------------------------------------------------------------

def test_a_run_deletes_only_due_tips_leaves_tombstones_and_nothing_else_of_them(
        twilio, core, casework, redis_client, at) -> None:
    old = datetime(2026, 6, 1, 10, tzinfo=UTC)
    # Given: a tip closed long ago, with a recording still kept at the provider for a person
    gone_closed, pin_closed = texted_tip(twilio, at, old)
    core.tips.finish_part(gone_closed, 1, PartStatus.TRANSCRIPTION_FAILED,
                          kept_audio={"recording_sid": KEPT_RECORDING})
    closed(casework, at, gone_closed, old + timedelta(days=10))
    # and one passed on long ago, after a question, with an open tip linked as its duplicate
    gone_passed, _ = texted_tip(twilio, at, old)
    assert casework.claim_next("sam") == gone_passed
    core.follow_up.ask(gone_passed, "sam", "Which door do they use?")
    casework.add_note(gone_passed, "sam", "Checked the street view.")
    open_old, _ = texted_tip(twilio, at, old)
    assert casework.claim_next("jo") == open_old
    casework.link_duplicate(open_old, "jo", gone_passed)
    passed_on(casework, at, gone_passed, old + timedelta(days=30), claimed=True)
    # and one closed recently
    recent, pin_recent = texted_tip(twilio, at, AS_OF - timedelta(days=60))
    closed(casework, at, recent, AS_OF - timedelta(days=30))
    # an audit trail from before digests, naming them in clear, and one from now
    for reference in (gone_closed, gone_passed, recent):
        legacy_entry(redis_client, core, "sam", "view", reference)
    core.audit.append("sam", "view", tip=recent)
    failed = failed_job_naming(redis_client, gone_closed)
    shredded = {gone_closed: secrets_of(redis_client, gone_closed), gone_passed: secrets_of(redis_client, gone_passed)}
    pin_hash_closed = core.tips.pin_hash(gone_closed)
    own_pin_hash = {reference: core.tips.pin_hash(reference).encode() for reference in shredded}
    assert all(shredded.values())

    retention = retention_of(core)
    plan = retention.plan(AS_OF)
    assert plan.by_outcome_month == {("closed", "2026-06"): 1, ("passed-on", "2026-06"): 1}
    assert plan.open_past == 1 and core.tips.get(gone_closed) is not None  # a plan changes nothing

    counts = retention.run(AS_OF, "operator")

    assert counts.by_outcome_month == plan.by_outcome_month and counts.open_past == 1
    # What stays: the tombstones, expiring
    assert redis_client.hgetall(keys.tombstone(gone_closed)) == {
        b"pin_hash": pin_hash_closed.encode(), b"month": b"2026-06", b"outcome": b"closed"}
    ttl = redis_client.ttl(keys.tombstone(gone_closed))
    assert 730 * 86400 - 60 < ttl <= 730 * 86400
    # The kept tips still open (readable), the open one no longer links to a deleted tip
    assert core.tips.get(recent).transcript == REPORT and core.tips.get(open_old).transcript == REPORT
    assert casework.case(open_old).duplicate_of is None
    assert retention.open_past(AS_OF) == [(open_old, int(old.timestamp()) * 1000)]
    # Failed jobs naming it are gone; the kept recording's deletion is queued, sealed
    assert not Job.exists(failed, connection=redis_client)
    queued = [job for job in Queue(keys.QUEUE_RECORDINGS, connection=redis_client).jobs
              if job.func_name == jobs.DELETE_RECORDINGS]
    assert [core.arguments.open_recording_sids(job.args[0]) for job in queued] == [[KEPT_RECORDING]]
    # The privacy scan: nothing of the deleted tips anywhere but their tombstones
    for where, blob in redis_blobs(redis_client):
        for reference, secrets in shredded.items():
            in_tombstone = where in (f"key name {keys.tombstone(reference)}",) or where.startswith(
                f"hash {keys.tombstone(reference)}")
            if not in_tombstone:
                assert reference.encode() not in blob, where
            for secret in secrets:
                if secret == own_pin_hash[reference] and in_tombstone:
                    continue
                assert secret not in blob, where
    # The audit trail still verifies, names the deleted tips nowhere, and finds the kept tip's history
    report = core.audit.verify()
    assert report.ok, report.problems
    trail = [AuditEntry.from_json(raw) for raw in redis_client.lrange(keys.AUDIT_TRAIL, 0, -1)]
    assert trail[0].action == "trail_rewritten" and trail[-1].action == "retention_run"
    assert "deleted=2 closed=1 passed-on=1 open-past-retention=1" in trail[-1].detail
    assert [e.action for e in core.audit.for_tip(recent)] == ["view", "view"]
    assert core.audit.for_tip(gone_closed) != [] and all(e.tip != gone_closed for e in trail)
    # A second run finds nothing more, and does not rewrite the trail again
    assert retention.run(AS_OF, "operator").total == 0
    assert [AuditEntry.from_json(raw).action for raw in redis_client.lrange(keys.AUDIT_TRAIL, 0, -1)].count(
        "trail_rewritten") == 1
    assert pin_recent  # the kept tip's tipster is unaffected: the next test returns to both


def test_the_tipster_of_a_deleted_tip_hears_so_after_the_pin_and_nobody_else_does(
        twilio, core, casework, at) -> None:
    gone, pin = texted_tip(twilio, at, datetime(2026, 1, 5, 10, tzinfo=UTC))
    closed(casework, at, gone, datetime(2026, 1, 6, 10, tzinfo=UTC))
    kept, kept_pin = texted_tip(twilio, at, AS_OF - timedelta(days=3))
    assert retention_of(core).run(AS_OF, "operator").total == 1

    call = twilio.call("+447700900501").dials().presses("1").presses(CALLING_BACK_KEY)
    call.presses(gone + "#").presses(pin + "#")
    heard = call.heard_since_last_step()
    assert DELETED_VOICE in heard and "What is your information about?" in heard  # back at the topics
    wrong = f"{(int(pin) + 1) % 10 ** 6:06d}"
    call.presses(CALLING_BACK_KEY).presses(gone + "#").presses(wrong + "#")
    assert REFUSED_VOICE in call.heard_since_last_step()
    call.presses(CALLING_BACK_KEY).presses(kept + "#").presses(kept_pin + "#")
    assert MENUS.catalogue("en").text("status_received") in call.heard_since_last_step()

    phone = Phone(twilio, "+447700900502")
    assert DELETED_SMS in phone.sends(f"REF {gone} PIN {pin}")
    assert phone.sends(f"REF {gone} PIN {wrong}") == REFUSED_SMS
    assert phone.sends(f"REF {'1' * 10}0 PIN {pin}") == REFUSED_SMS  # unknown (and malformed)


def test_open_tips_are_never_deleted_and_new_information_restarts_the_clock() -> None:
    settings = RetentionSettings(days=365, tombstone_days=730, grace_days=90)
    tip = {"received_hour": "2025-01-01T10:00Z", "tipster_status_hour": "2025-01-02T10:00Z"}
    assert due_outcome(tip, {}, settings, AS_OF) is None  # open, however old
    assert due_outcome(tip, {"finished": "in-review"}, settings, AS_OF) is None
    assert due_outcome(tip, {"finished": "closed"}, settings, AS_OF) == "closed"  # older cases: the status hour
    assert due_outcome(tip, {"finished": "closed", "finished_hour": "2027-01-01T10:00Z"}, settings, AS_OF) is None
    assert due_outcome(tip, {"finished": "passed-on", "passed_hour": "2027-06-01T10:00Z"}, settings, AS_OF) is None
    later = {**tip, "part:2:later": "1", "part:2:hour": "2027-10-01T10:00Z"}
    assert due_outcome(later, {"finished": "closed"}, settings, AS_OF) is None  # within the grace
    assert due_outcome(later, {"finished": "closed"}, settings, AS_OF + timedelta(days=60)) == "closed"


def test_retention_settings_have_defaults_and_bounds() -> None:
    from config.settings import Settings

    assert RetentionSettings.from_env({}) == RetentionSettings(365, 730, 90)
    with pytest.raises(SettingsError, match="RETENTION_DAYS must be between 30 and 3650"):
        RetentionSettings.from_env({"RETENTION_DAYS": "7"})
    with pytest.raises(SettingsError, match="RETENTION_GRACE_DAYS must be between 0 and 100"):
        RetentionSettings.from_env({"RETENTION_DAYS": "100", "RETENTION_GRACE_DAYS": "200"})
    with pytest.raises(SettingsError, match="TOMBSTONE_DAYS must be a whole number"):
        RetentionSettings.from_env({"TOMBSTONE_DAYS": "forever"})
    assert Settings.__dataclass_fields__["retention"]


def test_the_cli_plans_and_runs_and_prints_counts_never_references(
        twilio, core, casework, at, environment, monkeypatch, capsys) -> None:
    gone, _ = texted_tip(twilio, at, datetime(2026, 3, 2, 10, tzinfo=UTC))
    closed(casework, at, gone, datetime(2026, 3, 3, 10, tzinfo=UTC))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert cli.main(["retention", "plan", "--as-of", "2027-12-01"]) == 0
    planned = capsys.readouterr().out
    assert "would delete 1 tip(s)" in planned and re.search(r"closed\s+2026-03\s+1", planned)
    assert gone not in planned and core.tips.get(gone) is not None
    assert cli.main(["retention", "run", "--as-of", "2027-12-01"]) == 0
    ran = capsys.readouterr().out
    assert "deleted 1 tip(s)" in ran and gone not in ran and core.tips.get(gone) is None
    assert cli.main(["retention", "plan", "--as-of", "2027-12-01"]) == 0
    assert "would delete 0 tip(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["retention", "plan", "--as-of", "1 December"])


def test_two_clocks_at_once_run_it_once_a_day(twilio, core, casework, redis_client, at) -> None:
    gone, _ = texted_tip(twilio, at, datetime(2026, 3, 2, 10, tzinfo=UTC))
    closed(casework, at, gone, datetime(2026, 3, 3, 10, tzinfo=UTC))
    results: list[object] = []
    barrier = threading.Barrier(2)

    def clock() -> None:
        barrier.wait()
        results.append(run_daily_retention(core, AS_OF))

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ran = [result for result in results if result is not None]
    assert len(results) == 2 and len(ran) == 1 and ran[0].total == 1
    assert run_daily_retention(core, AS_OF + timedelta(hours=5)) is None  # later that day: done
    actions = [AuditEntry.from_json(raw).action for raw in redis_client.lrange(keys.AUDIT_TRAIL, 0, -1)]
    assert actions.count("retention_run") == 1
    assert run_daily_retention(core, AS_OF + timedelta(days=1)).total == 0  # the next day runs again


def test_an_open_tip_past_the_retention_period_shows_on_the_deadlines_page(twilio, core, console, casework,
                                                                          at) -> None:
    old = datetime(2026, 2, 2, 10, tzinfo=UTC)
    open_old, _ = texted_tip(twilio, at, old)
    young, _ = texted_tip(twilio, at, AS_OF - timedelta(days=20))
    at[0] = AS_OF

    past = {deadline.key: deadline for deadline in console.deadlines.report().lists}["retention"]

    assert [row.reference for row in past.rows] == [open_old] and past.count == 1
    assert "365 days" in past.title and young not in {row.reference for row in past.rows}
    assert retention_of(core).run(AS_OF, "operator").total == 0 and core.tips.get(open_old) is not None


# -- the proof: a backup restored after a retention run cannot bring the dead back ---------

def test_a_backup_taken_before_a_retention_run_restores_every_tip_but_the_deleted_one(
        twilio, core, casework, at, redis_client, environment, monkeypatch, tmp_path) -> None:

    month = datetime(2026, 10, 5, 10, tzinfo=UTC)
    doomed, _ = texted_tip(twilio, at, month)
    neighbour, _ = texted_tip(twilio, at, month + timedelta(days=1))  # same month, still open
    closed(casework, at, doomed, month + timedelta(days=2))
    backups.create(redis_client, tmp_path / "before")

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["retention", "run", "--as-of", AS_OF.date().isoformat()]) == 0
    assert not redis_client.exists(keys.tip(doomed))

    server = RedisServer(tmp_path / "restored", appendfsync=None)
    server.data_dir.mkdir(parents=True)
    server.start()
    try:
        restored = server.client()
        backups.restore(restored, tmp_path / "before")
        assert restored.exists(keys.tip(doomed))  # the backup still holds its record, wrapped key and all ...
        old = TipStore(restored, core.tips.vault, HandlerQueue(restored))
        with pytest.raises(ShreddedTip):  # ... but the key version it names is destroyed, and nothing carries it
            old.get(doomed)
        assert REPORT in old.get(neighbour).transcript  # its neighbour of the same month opens
        restored.close()
    finally:
        server.remove()
