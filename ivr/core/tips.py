"""The tip record: what a tipster gave us, and nothing that says who they are.

A tip is a Redis hash `tipline:tip:<reference>` holding the reference, an argon2 hash of
the PIN, channel, language, category, the coarse hour it arrived, and its parts (one per
recording or message), each with its channel, a pipeline status and, once transcribed, its
text as ciphertext under the tip's own data key (`ivr.core.vault.TipVault`); a voice part's
transcript comes with the recogniser's words and how sure it was of each
(`ivr.core.confidence`), sealed the same way. The pipeline status says
where the machine is; the triage status (`new` here) is the handlers'. Both are stored as
codes (`ivr.core.statuses`), never as the words a handler reads. No CallSid,
RecordingSid or number is ever written here; a recording kept for a person to review is
referred to only by a sealed handle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from argon2 import PasswordHasher

from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.coarse_time import current_hour, hour_milliseconds
from ivr.core.confidence import Piece, Word, doubtful_overall, marked_pieces, words_as_json, words_from_json
from ivr.core.handler_queue import HandlerQueue
from ivr.core.period_keys import PeriodKeyGone
from ivr.core.redis_values import HashFields, as_bytes, as_text
from ivr.core.rekeying import move_old_format_tips, rekey_periods
from ivr.core.statuses import Arrival, PartStatus, TipsterStatus, Triage
from ivr.core.transactions import atomically
from ivr.core.vault import TipVault

# The pipeline's own short names for the codes it stores (`ivr.core.statuses` says what each means).
AWAITING_TRANSCRIPT = PartStatus.AWAITING_TRANSCRIPT
AWAITING_LANGUAGE = PartStatus.AWAITING_LANGUAGE
NO_SPEECH = PartStatus.NO_SPEECH
TRANSCRIPTION_FAILED = PartStatus.TRANSCRIPTION_FAILED
READY = PartStatus.READY
LINE_DOWN = Arrival.LINE_DOWN
FINAL_PART_STATUSES = (AWAITING_LANGUAGE, NO_SPEECH, TRANSCRIPTION_FAILED, READY)
# What a tip with several parts shows: the part that most needs a person wins.
_STATUS_PRECEDENCE = (TRANSCRIPTION_FAILED, AWAITING_LANGUAGE, AWAITING_TRANSCRIPT, READY, NO_SPEECH)
# A part's fields that hold ciphertext (never read as text).
_SEALED_PART_FIELDS = (":transcript", ":words", ":audio")

# KEYS[1] tip, KEYS[2] the deadlines' "status since" set. ARGV: triage, tipster status,
# its hour (text), the hour's ms, "1" when that status is final, the reference.
# The tipster-facing status and its hour change only when the stage does, so the
# deadlines page measures how long the tipster has heard the same thing.
_SET_TRIAGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'triage', ARGV[1])
if redis.call('HGET', KEYS[1], 'tipster_status') == ARGV[2] then return 1 end
redis.call('HSET', KEYS[1], 'tipster_status', ARGV[2], 'tipster_status_hour', ARGV[3])
if ARGV[5] == '1' then redis.call('ZREM', KEYS[2], ARGV[6]) else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6]) end
return 1
"""

# A 6-digit PIN cannot resist an offline search whatever the hash; argon2 at OWASP's
# minimum keeps the hash from being a shortcut, and per-reference lock-outs
# (ivr/core/pin_guard.py) do the rest.
PIN_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class ShreddedTip(LookupError):
    """The tip's data key was dropped (retention): its transcript is gone for good."""


@dataclass(frozen=True)
class NewPart:
    """A recording (or message) joining a tip: the facts known when it arrives."""

    choices: Choices
    pin_hash: str | None
    channel: str
    urgent: bool
    seconds: int
    arrival: Arrival | None = None  # how it reached us when not the usual way

    def __post_init__(self) -> None:
        if not self.choices.reference:
            raise ValueError("a new part needs the reference of the tip it joins")

    @property
    def reference(self) -> str:
        """The tip this part joins (always set: checked when made)."""
        return self.choices.reference or ""


@dataclass(frozen=True)
class Part:
    index: int
    status: PartStatus
    seconds: int
    transcript: str | None
    answers: int | None = None  # the number of the handler's question this part answers
    later: bool = False  # brought by the tipster coming back with their reference and PIN
    hour: str | None = None  # the coarse hour a later part arrived (the first parts share the tip's)
    channel: str = "voice"  # "voice": a machine transcript of a recording; "sms": the tipster's own text
    words: tuple[Word, ...] = ()  # a transcript's words and the recogniser's confidence (none before it kept them)
    audio_kept: bool = False  # its recording is kept at the provider for a handler to hear (disguised)

    @property
    def machine_transcript(self) -> bool:
        """Is the text the recogniser's (words may be wrong), not the tipster's own?"""
        return self.channel != "sms"

    @property
    def doubtful(self) -> bool:
        """Was the recogniser unsure of this transcript as a whole (`ivr.core.confidence`)?"""
        return doubtful_overall(self.words)

    @property
    def marked(self) -> tuple[Piece, ...]:
        """The transcript cut into pieces, each doubtful word a piece of its own (for the console)."""
        return marked_pieces(self.transcript or "", self.words)


@dataclass(frozen=True)
class Tip:
    """A stored tip as the console reads it; what the tipster chose is its `Choices`."""

    choices: Choices
    channel: str
    received_hour: str
    status: PartStatus
    triage: Triage
    parts: tuple[Part, ...]
    arrival: Arrival | None = None
    tipster_status: TipsterStatus = TipsterStatus.RECEIVED
    tipster_status_hour: str = ""
    reference_closed: bool = False  # the tipster closed their reference: no follow-up can reach them

    @property
    def reference(self) -> str:
        return self.choices.reference or ""

    @property
    def language(self) -> str:
        return self.choices.language or ""

    @property
    def category(self) -> str:
        return self.choices.category or ""

    @property
    def transcript(self) -> str:
        return "\n".join(p.transcript for p in self.parts if p.transcript)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _channel_before_parts_had_one(tip_channel: str, seconds: int) -> str:
    """A part stored before parts recorded their channel: a recording has a length, a text
    none; a part with neither (a recording whose length the provider did not give) takes
    the tip's channel. When in doubt, voice: "machine transcript" is the safer label."""
    return "voice" if seconds or tip_channel != "sms" else "sms"


class TipStore:
    def __init__(self, connection: redis.Redis, vault: TipVault, queue: HandlerQueue,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._redis = connection
        self._vault = vault
        self.queue = queue
        # What "now" is for the coarse hours written (tests of ages set it; nothing sleeps).
        self.clock = clock
        self._set_triage = connection.register_script(_SET_TRIAGE)

    @property
    def vault(self) -> TipVault:
        """The vault tips are sealed with (an SMS draft is sealed under its future tip's key)."""
        return self._vault

    # -- intake: inside the caller's WATCH/MULTI transaction ------------------------------

    def part_count(self, pipe: redis.client.Pipeline, reference: str) -> int:
        """How many parts the tip has (0: no tip yet). Call while WATCHing keys.tip(reference)."""
        return int(pipe.hget(keys.tip(reference), "parts") or 0)

    def add_part(self, pipe: redis.client.Pipeline, part: NewPart, existing_parts: int,
                 wrapped_key: str | None = None) -> int:
        """Queue the commands that add `part` (creating and queueing the tip when it is new).

        `wrapped_key` is the data key a new tip gets (default: a fresh one); an SMS brings
        the key its draft was already sealed under.
        """
        key = keys.tip(part.reference)
        index = existing_parts + 1
        now = self.clock()
        if existing_parts == 0:
            pipe.hset(key, mapping={
                **part.choices.to_record(), "pin_hash": part.pin_hash or "", "channel": part.channel,
                "urgent": int(part.urgent),
                "received_hour": current_hour(now), "status": AWAITING_TRANSCRIPT, "triage": Triage.NEW,
                "tipster_status": TipsterStatus.RECEIVED, "tipster_status_hour": current_hour(now),
                "wrapped_key": wrapped_key or self._vault.new_tip_key(part.reference, now),
                **({"arrival": part.arrival} if part.arrival else {}),
            })
            pipe.zadd(keys.TIPSTER_STATUS_SINCE, {part.reference: hour_milliseconds(now)})
            self.queue.add(pipe, part.reference, part.urgent, hour_milliseconds(now))
        pipe.hset(key, mapping={"parts": index, f"part:{index}:status": AWAITING_TRANSCRIPT,
                                f"part:{index}:seconds": part.seconds, f"part:{index}:channel": part.channel,
                                "status": AWAITING_TRANSCRIPT})
        return index

    def mark_later_part(self, pipe: redis.client.Pipeline, reference: str, index: int,
                        answers: int | None) -> None:
        """Queue (inside the caller's MULTI) the marks of a part a returning tipster brought:
        its coarse hour, and the question it answers when it answers one."""
        mapping: HashFields = {f"part:{index}:later": 1, f"part:{index}:hour": current_hour(self.clock())}
        if answers:
            mapping[f"part:{index}:answers"] = answers
        pipe.hset(keys.tip(reference), mapping=mapping)

    def add_text_part(self, pipe: redis.client.Pipeline, part: NewPart, text: str,
                      new_wrapped_key: str | None = None) -> int:
        """Add a finished text part (an SMS), sealed under the tip's key; returns its index.

        Call while WATCHing keys.tip(reference) and before `pipe.multi()`: it reads what it
        needs, starts the transaction and queues the writes, so the caller can queue more
        (delete the session, queue the clean-up) before executing.
        """
        key = keys.tip(part.reference)
        parts_raw, wrapped_raw = pipe.hmget(key, "parts", "wrapped_key")
        existing = int(parts_raw or 0)
        if existing and not wrapped_raw:
            raise ShreddedTip("this tip was shredded")
        statuses = [as_text(s) for s in pipe.hmget(key, *[f"part:{i}:status" for i in range(1, existing + 1)])
                    if s] if existing else []
        wrapped = as_text(wrapped_raw) if wrapped_raw else (
            new_wrapped_key or self._vault.new_tip_key(part.reference, self.clock()))
        pipe.multi()
        index = self.add_part(pipe, part, existing, wrapped_key=wrapped)
        pipe.hset(key, mapping={
            f"part:{index}:status": READY,
            f"part:{index}:transcript": self._vault.seal(wrapped, part.reference, f"part:{index}:transcript", text),
            "status": next(s for s in _STATUS_PRECEDENCE if s in [*statuses, READY]),
        })
        return index

    def await_transcript(self, pipe: redis.client.Pipeline, reference: str, index: int, sealed_job: str) -> None:
        """Queue the commands that remember a part awaits its transcript, with its job's
        sealed handle (enough to queue the job again), until `finish_part`."""
        pipe.hset(keys.tip(reference), f"part:{index}:job", sealed_job)
        pipe.zadd(keys.RECORDINGS_AWAITING, {f"{reference}:{index}": time.time()})

    def awaiting_since(self, before: float) -> list[tuple[str, int]]:
        """Parts awaiting a transcript since before `before` (seconds since the epoch), oldest first."""
        members = self._redis.zrangebyscore(keys.RECORDINGS_AWAITING, 0, before)
        return [(reference, int(index)) for reference, _, index in (as_text(m).rpartition(":") for m in members)]

    def awaited_job(self, reference: str, index: int) -> str | None:
        """The sealed handle of the job a part awaits (None once it is finished)."""
        raw = self._redis.hget(keys.tip(reference), f"part:{index}:job")
        return as_text(raw) if raw else None

    def forget_awaiting(self, reference: str, index: int) -> None:
        """A part found finished (or gone) while still listed as awaiting: unlist it."""
        self._redis.zrem(keys.RECORDINGS_AWAITING, f"{reference}:{index}")

    def pin_hash(self, reference: str) -> str | None:
        raw = self._redis.hget(keys.tip(reference), "pin_hash")
        return as_text(raw) if raw else None

    # -- the pipeline's results -----------------------------------------------------------

    def part_status(self, reference: str, index: int) -> PartStatus | None:
        raw = self._redis.hget(keys.tip(reference), f"part:{index}:status")
        return PartStatus(as_text(raw)) if raw else None

    def finish_part(self, reference: str, index: int, status: PartStatus, transcript: str | None = None,
                    kept_audio: dict[str, Any] | None = None, words: tuple[Word, ...] = ()) -> None:
        """Record a part's outcome (and its ciphertext) and the tip's overall status, atomically.

        `words` (with a transcript) are sealed under the tip's key like the transcript: they
        are the transcript again, with the recogniser's confidence in each word.
        """
        key = keys.tip(reference)

        def record(pipe: redis.client.Pipeline) -> None:
            fields = {as_text(k): as_bytes(v) for k, v in pipe.hgetall(key).items()}
            if not fields:
                raise LookupError("the tip this part belongs to no longer exists (shredded?)")
            wrapped = as_text(fields["wrapped_key"])
            update: HashFields = {f"part:{index}:status": status}
            if transcript is not None:
                update[f"part:{index}:transcript"] = self._vault.seal(
                    wrapped, reference, f"part:{index}:transcript", transcript)
                if words:
                    update[f"part:{index}:words"] = self._vault.seal(
                        wrapped, reference, f"part:{index}:words", words_as_json(words))
            if kept_audio is not None:
                update[f"part:{index}:audio"] = self._vault.seal(
                    wrapped, reference, f"part:{index}:audio", json.dumps(kept_audio))
            statuses = [update[f"part:{i}:status"] if i == index else as_text(fields[f"part:{i}:status"])
                        for i in range(1, int(fields["parts"]) + 1)]
            update["status"] = next(s for s in _STATUS_PRECEDENCE if s in statuses)
            pipe.multi()
            pipe.hset(key, mapping=update)
            pipe.hdel(key, f"part:{index}:job")
            pipe.zrem(keys.RECORDINGS_AWAITING, f"{reference}:{index}")

        atomically(self._redis, [key], record)

    # -- reading, shredding, rotating -------------------------------------------------------

    def get(self, reference: str) -> Tip | None:
        fields = {as_text(k): as_bytes(v) for k, v in self._redis.hgetall(keys.tip(reference)).items()}
        if not fields:
            return None
        text = {k: as_text(v) for k, v in fields.items() if not k.endswith(_SEALED_PART_FIELDS)}
        wrapped = text.get("wrapped_key")
        if wrapped is None:
            raise ShreddedTip("this tip was shredded")
        parts = []
        for index in range(1, int(text.get("parts", 0)) + 1):
            sealed = fields.get(f"part:{index}:transcript")
            transcript = self._open_part(wrapped, reference, f"part:{index}:transcript", sealed) if sealed else None
            sealed_words = fields.get(f"part:{index}:words")
            words = words_from_json(self._open_part(wrapped, reference, f"part:{index}:words", sealed_words)) \
                if sealed_words else ()
            answers = text.get(f"part:{index}:answers")
            seconds = int(text[f"part:{index}:seconds"])
            parts.append(Part(index, PartStatus(text[f"part:{index}:status"]), seconds,
                              transcript, answers=int(answers) if answers else None,
                              later=f"part:{index}:later" in text, hour=text.get(f"part:{index}:hour"),
                              channel=text.get(f"part:{index}:channel") or _channel_before_parts_had_one(
                                  text["channel"], seconds),
                              words=words, audio_kept=f"part:{index}:audio" in fields))
        arrival = text.get("arrival")
        triage = Triage(text["triage"])
        return Tip(choices=Choices.from_mapping({**text, "reference": reference}), channel=text["channel"],
                   received_hour=text["received_hour"], status=PartStatus(text["status"]),
                   triage=triage, parts=tuple(parts), arrival=Arrival(arrival) if arrival else None,
                   tipster_status=TipsterStatus(text.get("tipster_status") or TipsterStatus.for_triage(triage)),
                   tipster_status_hour=text.get("tipster_status_hour") or text["received_hour"],
                   reference_closed="reference_closed" in text)

    def _open_part(self, wrapped: str, reference: str, field: str, sealed: bytes) -> str:
        try:
            return self._vault.open(wrapped, reference, field, sealed)
        except PeriodKeyGone:
            raise ShreddedTip("this tip was shredded (its period key is destroyed: restored from a backup?)") from None

    def kept_audio(self, reference: str, index: int) -> dict[str, Any] | None:
        """The sealed handle of a recording kept at the provider for a person, opened:
        `recording_sid`, and `doubtful` when it was kept because its transcript is."""
        fields = self._redis.hmget(keys.tip(reference), "wrapped_key", f"part:{index}:audio")
        if not fields[0] or not fields[1]:
            return None
        handle: dict[str, Any] = json.loads(
            self._vault.open(as_text(fields[0]), reference, f"part:{index}:audio", as_bytes(fields[1])))
        return handle

    def drop_kept_audio(self, reference: str, index: int) -> None:
        """The recording is gone at the provider: forget its handle."""
        self._redis.hdel(keys.tip(reference), f"part:{index}:audio")

    def keeps_audio(self, reference: str, index: int) -> bool:
        """Does this part keep its recording at the provider for a person? (Nothing opened.)"""
        return bool(self._redis.hexists(keys.tip(reference), f"part:{index}:audio"))

    def has_kept_audio(self, reference: str, pipe: redis.client.Pipeline | None = None) -> bool:
        """Does any part keep audio for a person? (With `pipe`: read inside its WATCH.)"""
        return any(as_bytes(field).endswith(b":audio") for field in (pipe or self._redis).hkeys(keys.tip(reference)))

    def seal_for(self, reference: str, field: str, text: str) -> bytes:
        """Seal text that belongs to a tip (a summary, a note) under the tip's own key."""
        return self._vault.seal(self._wrapped_key(reference), reference, field, text)

    def open_for(self, reference: str, field: str, sealed: bytes) -> str:
        return self._vault.open(self._wrapped_key(reference), reference, field, sealed)

    def _wrapped_key(self, reference: str) -> str:
        wrapped = self._redis.hget(keys.tip(reference), "wrapped_key")
        if wrapped is None:
            raise ShreddedTip("this tip was shredded, or never existed")
        return as_text(wrapped)

    def triage(self, reference: str) -> Triage | None:
        """The triage status alone (no transcript opened)."""
        raw = self._redis.hget(keys.tip(reference), "triage")
        return Triage(as_text(raw)) if raw else None

    def set_triage(self, reference: str, triage: Triage, pipe: redis.client.Pipeline | None = None) -> None:
        """Set the triage, and with it the tipster-facing status when its stage changes."""
        stage = TipsterStatus.for_triage(triage)
        now = self.clock()
        self._set_triage(keys=[keys.tip(reference), keys.TIPSTER_STATUS_SINCE],
                         args=[triage, stage, current_hour(now), hour_milliseconds(now), int(stage.is_final),
                               reference], client=pipe or self._redis)

    def shred(self, reference: str) -> None:
        """Crypto-shred: drop the wrapped data key; what ciphertext remains cannot be opened."""
        self._redis.hdel(keys.tip(reference), "wrapped_key")

    def rekey_period(self, period: str) -> int:
        """Make shreds in `period` ("2026-11") final, even in a Redis backup: re-wrap its surviving
        tips under a fresh version of its key and destroy the old versions. Returns how many
        records moved."""
        return self.rekey_periods([period])

    def rekey_periods(self, periods: Collection[str]) -> int:
        """`rekey_period` for several periods in one scan (the retention run's, after its shreds)."""
        return rekey_periods(self._redis, self._vault, periods)

    def rewrap_all(self) -> int:
        """Rotation: re-key every period with a key sealed under an older master key, and move
        tips from before period keys onto period keys. Returns how many records moved.
        (`tipline keys rewrap` does this in a worker job.)"""
        stale = self._vault.periods.periods_to_reseal() if self._vault.periods is not None else []
        return rekey_periods(self._redis, self._vault, stale) + move_old_format_tips(self._redis, self._vault)
