"""Retention: a tip passed on or closed long enough ago is crypto-shredded and removed.

A tip is *due* at `as_of` when its case is finished (passed on or closed) and was
finished at least RETENTION_DAYS before (the case's `finished_hour`; cases finished before
that was recorded: `passed_hour`, else the tip's tipster-status hour, which a finish sets),
and nothing its tipster brought later is within RETENTION_GRACE_DAYS. An open tip is never
due, however old: it shows on the supervisors' deadlines page instead (`open_past`).

Removing a due tip, in one transaction that WATCHes it (a tipster coming back meanwhile
reopens it, and the check runs again): the tip (its wrapped data key with it: the
crypto-shred), its case (summary, notes, drafts, links), its questions, its members of
the deadlines' sorted sets and of the parts awaiting a transcript, its queue entries
(acknowledged and deleted from every stream), the duplicate links other cases hold to it,
its recording markers, a "just closed" SMS marker naming it, its PIN guard's counters,
and, when recordings were still kept at the provider for a person, a job that deletes
them there (their sids sealed: the job does not name the tip; their "seen" markers, which
name no tip, stay meanwhile so the provider sweep does not take them in as new tips).
Then the jobs naming it (queued, scheduled, failed) are deleted.

What stays is a tombstone, `keys.tombstone(reference)`: the PIN's hash, the month the tip
came in and its outcome, expiring after TOMBSTONE_DAYS, so the tipster who proves the
PIN hears it was dealt with and deleted (`ivr.core.pin_guard.Proof.DELETED`). A tip whose
tipster closed the reference has no PIN hash, and leaves no tombstone. Aggregates (the
hotspot counts) never held a tip and stay.

Each run first rewrites any audit entry that still names a tip in clear
(`ivr.core.audit_digests`), and ends with one audit entry giving its counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from config.settings import RetentionSettings
from ivr.core import Core, keys, retention_index
from ivr.core.audit import AuditLog
from ivr.core.audit_digests import digest_clear_references
from ivr.core.handler_queue import GROUP
from ivr.core.jobs import JobArguments, enqueue_recordings_deletion
from ivr.core.pin_guard import PinGuard
from ivr.core.redis_values import as_text
from ivr.core.statuses import Triage
from ivr.core.tips import TipStore
from ivr.core.transactions import atomically
from ivr.core.vault import period_label_of

FINISHED = (Triage.PASSED_ON, Triage.CLOSED)
HOUR_FORMAT = "%Y-%m-%dT%H:00Z"
SCAN_BATCH = 200
_CASE_FIELDS = ("finished", "finished_hour", "passed_hour")


@dataclass(frozen=True)
class Due:
    """A tip whose time is up: which, its outcome, and the month it came in."""

    reference: str
    outcome: str
    month: str  # "2026-11"
    # The period whose key its data key is wrapped under (usually `month`, but the record is
    # the truth): the one to re-key after the shred. None for a tip from before period keys.
    key_period: str | None = None


@dataclass(frozen=True)
class RetentionCounts:
    """How many tips go (or went), by outcome and month; and how many open ones are past the period."""

    by_outcome_month: dict[tuple[str, str], int]
    open_past: int

    @property
    def total(self) -> int:
        return sum(self.by_outcome_month.values())

    def detail(self) -> str:
        """A short line for the audit trail and the clock's log (no reference, no month list)."""
        outcomes = Counter[str]()
        for (outcome, _), count in self.by_outcome_month.items():
            outcomes[outcome] += count
        per_outcome = " ".join(f"{outcome}={count}" for outcome, count in sorted(outcomes.items()))
        return f"deleted={self.total} {per_outcome} open-past-retention={self.open_past}".replace("  ", " ")


def parse_hour(hour: str) -> datetime:
    return datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)


def due_outcome(tip: dict[str, str], case: dict[str, str], settings: RetentionSettings,
                as_of: datetime) -> str | None:
    """The tip's outcome when it is due at `as_of`, else None (open, too recent, or in the grace)."""
    finished = case.get("finished")
    if finished not in FINISHED:
        return None
    finished_hour = (case.get("finished_hour") or case.get("passed_hour") or tip.get("tipster_status_hour")
                     or tip.get("received_hour"))
    if not finished_hour or parse_hour(finished_hour) > as_of - timedelta(days=settings.days):
        return None
    later = [parse_hour(hour) for name, hour in tip.items() if name.startswith("part:") and name.endswith(":hour")]
    if later and max(later) > as_of - timedelta(days=settings.grace_days):
        return None
    return finished


class Retention:
    """Plans and runs the retention rules over every tip (the CLI and the clock)."""

    def __init__(self, connection: redis.Redis, settings: RetentionSettings, tips: TipStore, pin_guard: PinGuard,
                 audit: AuditLog, arguments: JobArguments, recording_key: Callable[[str], str]) -> None:
        self._redis = connection
        self.settings = settings
        self._tips = tips
        self._pin_guard = pin_guard
        self._audit = audit
        self._arguments = arguments
        self._recording_key = recording_key  # a recording sid's keyed digest, as the intake names it

    def plan(self, as_of: datetime) -> RetentionCounts:
        """What a run at `as_of` would delete, counted; nothing changes."""
        due, open_past = self._survey(as_of)
        return _counted(due, len(open_past))

    def open_past(self, as_of: datetime) -> list[tuple[str, int]]:
        """(reference, the hour it came in, in ms) of every open tip older than the retention
        period: kept, and owed a decision (the deadlines page), oldest first."""
        return sorted(self._survey(as_of)[1], key=lambda item: item[1])

    def run(self, as_of: datetime, who: str) -> RetentionCounts:
        """Delete every tip due at `as_of`, leave tombstones, record one audit entry; the counts."""
        digest_clear_references(self._audit, self._redis, who)
        due, open_past = self._survey(as_of)
        mentions = retention_index.gather(self._redis, self._arguments, {tip.reference for tip in due})
        removed = [tip for tip in due if self._remove(tip, mentions, as_of)]
        for tip in removed:
            retention_index.delete_jobs(self._redis, mentions.jobs.get(tip.reference, []))
        # Shreds made final even in an older backup: each month shredded in gets a fresh key version.
        self._tips.rekey_periods({tip.key_period for tip in removed if tip.key_period})
        counts = _counted(removed, len(open_past))
        self._audit.append(who, "retention_run", detail=f"as-of={as_of.date().isoformat()} {counts.detail()}")
        return counts

    # -- reading ---------------------------------------------------------------------------

    def _survey(self, as_of: datetime) -> tuple[list[Due], list[tuple[str, int]]]:
        """The due tips, and the open tips past the retention period (reference, received ms)."""
        due: list[Due] = []
        open_past: list[tuple[str, int]] = []
        cutoff = as_of - timedelta(days=self.settings.days)
        for reference, tip, case in self._every_tip():
            outcome = due_outcome(tip, case, self.settings, as_of)
            received = tip.get("received_hour", "")
            if outcome:
                label = period_label_of(tip.get("wrapped_key", ""))
                due.append(Due(reference, outcome, received[:7], label.partition(".")[0] if label else None))
            elif case.get("finished") not in FINISHED and received and parse_hour(received) <= cutoff:
                open_past.append((reference, int(parse_hour(received).timestamp()) * 1000))
        return due, open_past

    def _every_tip(self) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
        """(reference, tip fields but ciphertexts, case fields) of every tip, in batches."""
        prefix = keys.tip("")
        batch: list[str] = []
        for name in self._redis.scan_iter(match=keys.tip("*"), count=SCAN_BATCH):
            batch.append(as_text(name).removeprefix(prefix))
            if len(batch) == SCAN_BATCH:
                yield from self._read(batch)
                batch = []
        yield from self._read(batch)

    def _read(self, references: list[str]) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
        if not references:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            for reference in references:
                pipe.hgetall(keys.tip(reference))
                pipe.hmget(keys.case(reference), *_CASE_FIELDS)
            replies = pipe.execute()
        for index, reference in enumerate(references):
            tip, case = replies[2 * index], replies[2 * index + 1]
            if tip:
                yield reference, _plain(tip), {name: as_text(v) for name, v in zip(_CASE_FIELDS, case, strict=True)
                                               if v is not None}

    # -- removing --------------------------------------------------------------------------

    def _remove(self, due: Due, mentions: retention_index.Mentions, as_of: datetime) -> bool:
        """Remove one due tip and leave its tombstone; False when it is no longer due (reopened)."""
        reference = due.reference
        tip_key, case_key, questions_key = keys.tip(reference), keys.case(reference), keys.questions(reference)
        kept_sids = self._kept_recordings(reference)

        def remove(pipe: redis.client.Pipeline) -> bool:
            tip = _plain(pipe.hgetall(tip_key))
            case = {as_text(k): as_text(v) for k, v in pipe.hgetall(case_key).items()
                    if not as_text(k).startswith(("summary", "draft:", "note:"))}
            if not tip or due_outcome(tip, case, self.settings, as_of) is None:
                return False
            links = self._duplicate_links(pipe, reference, case)
            entries = set(mentions.entries.get(reference, []))
            if case.get("stream") and case.get("entry"):
                entries.add((case["stream"], case["entry"]))
            pipe.multi()
            pipe.delete(tip_key, case_key, questions_key, *self._pin_guard.keys_of(reference))
            pipe.zrem(keys.QUESTIONS_WAITING, reference)
            pipe.zrem(keys.TIPSTER_STATUS_SINCE, reference)
            pipe.zrem(keys.RECORDINGS_AWAITING, *(f"{reference}:{i}" for i in range(1, int(tip.get("parts", 0)) + 2)))
            for stream, entry in sorted(entries):
                pipe.xack(stream, GROUP, entry)
                pipe.xdel(stream, entry)
            for other_case, field in links:
                pipe.hdel(other_case, field)
            for marker in mentions.markers.get(reference, []):
                pipe.delete(marker)
            for recording_key in mentions.recordings.get(reference, []):
                pipe.delete(keys.recording_part(recording_key), keys.recording_seen(recording_key),
                            keys.recording_requeued(recording_key))
            if tip.get("pin_hash"):
                pipe.hset(keys.tombstone(reference), mapping={
                    "pin_hash": tip["pin_hash"], "month": due.month, "outcome": due.outcome})
                pipe.expire(keys.tombstone(reference), self.settings.tombstone_days * 24 * 3600)
            for sid in kept_sids:  # still at the provider until the job below: the sweep must not take it in
                pipe.set(keys.recording_seen(self._recording_key(sid)), 1, ex=keys.RECORDING_SEEN_SECONDS)
            if kept_sids:
                enqueue_recordings_deletion(self._redis, self._arguments.seal_recording_sids(kept_sids), pipeline=pipe)
            return True

        return atomically(self._redis, [tip_key, case_key, questions_key], remove)

    def _kept_recordings(self, reference: str) -> list[str]:
        """The sids of recordings still kept at the provider for a person (read before the tip goes)."""
        names = [as_text(name) for name in self._redis.hkeys(keys.tip(reference))]
        handles = [self._tips.kept_audio(reference, int(name.split(":")[1]))
                   for name in names if name.startswith("part:") and name.endswith(":audio")]
        return [str(handle["recording_sid"]) for handle in handles if handle and handle.get("recording_sid")]

    @staticmethod
    def _duplicate_links(pipe: redis.client.Pipeline, reference: str,
                         case: dict[str, str]) -> list[tuple[str, str]]:
        """(other case, field) of every link another case holds to this tip."""
        links = []
        original = case.get("duplicate_of")
        if original:
            links.append((keys.case(original), f"dup:{reference}"))
        for name in case:
            if name.startswith("dup:"):
                other = keys.case(name[4:])
                if as_text(pipe.hget(other, "duplicate_of") or b"") == reference:
                    links.append((other, "duplicate_of"))
        return links


def _plain(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A tip's fields as text, its ciphertexts left out."""
    return {as_text(k): as_text(v) for k, v in fields.items()
            if not as_text(k).endswith((":transcript", ":words", ":audio", ":job"))}


def _counted(tips: list[Due], open_past: int) -> RetentionCounts:
    return RetentionCounts(dict(Counter((tip.outcome, tip.month) for tip in tips)), open_past)


def retention_of(core: Core) -> Retention:
    """The retention rules over a built core (`ivr.core.build_core`)."""
    return Retention(core.redis, core.settings.retention, core.tips, core.pin_guard, core.audit, core.arguments,
                     core.recordings.recording_key)
