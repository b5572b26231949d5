"""A conversation in progress, in Redis: `tipline:sms:session:<session key>`.

The record holds the stage, the tipster's choices (`ivr.choices`, one hash field each:
language, category, reference), the PIN's argon2 hash, the
data key the tip will have (wrapped), the report text sealed under that key, and the
inbound MessageSids sealed for the clean-up job: nothing in it is readable in Redis. Each
save also marks those messages accounted for (`MessageCleanup.mark`), so the provider
sweep never takes in a text a conversation holds.

A session idle for IDLE_SECONDS is closed by the clock (`close_idle`), and its report is
stored like one ended with DONE: a Redis TTL alone would lose it, so every session is
also in a sorted set by idle deadline, and the record's own TTL (a safety net) is longer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis

from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.prompts import Menus
from ivr.core.redis_values import HashFields, as_bytes, as_text
from ivr.core.sms_cleanup import MessageCleanup
from ivr.core.tips import NewPart, TipStore
from ivr.core.transactions import atomically

IDLE_SECONDS = 30 * 60
RECORD_SECONDS = 2 * IDLE_SECONDS
# A text arriving this soon after DONE joins the same tip.
GRACE_SECONDS = 120

LANGUAGE, CATEGORY, REPORT = "language", "category", "report"


@dataclass
class Session:
    """One conversation: where it is, what the tipster chose, and the report so far."""

    key: str
    stage: str = LANGUAGE
    choices: Choices = field(default_factory=Choices)
    attempts: int = 0
    pin_hash: str | None = None
    wrapped_key: str | None = None
    texts: list[str] = field(default_factory=list)
    message_sids: list[str] = field(default_factory=list)


class SessionStore:
    def __init__(self, connection: redis.Redis, menus: Menus, tips: TipStore, cleanup: MessageCleanup) -> None:
        self._redis = connection
        self._menus = menus
        self._tips = tips
        self._cleanup = cleanup

    def exists(self, session_key: str) -> bool:
        return bool(self._redis.exists(keys.sms_session(session_key)))

    def load(self, pipe: redis.client.Pipeline, session_key: str) -> Session | None:
        """The session (call while WATCHing its key), or None."""
        raw = {as_text(k): as_bytes(v) for k, v in pipe.hgetall(keys.sms_session(session_key)).items()}
        if not raw:
            return None
        text = {k: as_text(v) for k, v in raw.items() if k not in ("draft", "sids")}
        session = Session(key=session_key, stage=text["stage"], choices=Choices.from_mapping(text),
                          attempts=int(text.get("attempts", 0)), pin_hash=text.get("pin_hash") or None,
                          wrapped_key=text.get("wrapped_key") or None,
                          message_sids=self._cleanup.arguments.open_message_sids(raw.get("sids")))
        reference = session.choices.reference
        if reference and session.wrapped_key and raw.get("draft"):
            session.texts = json.loads(self._tips.vault.open(session.wrapped_key, reference, "sms-draft",
                                                             raw["draft"]))
        return session

    def save(self, pipe: redis.client.Pipeline, session: Session, now: float) -> None:
        """Queue the writes of `session` (inside the caller's MULTI) and push its idle deadline."""
        key = keys.sms_session(session.key)
        record: HashFields = {
            "stage": session.stage, **session.choices.to_record(),
            "attempts": session.attempts, "pin_hash": session.pin_hash or "",
            "wrapped_key": session.wrapped_key or "", "deadline": int(now + IDLE_SECONDS),
            "sids": self._cleanup.arguments.seal_message_sids(session.message_sids),
        }
        if session.texts and session.choices.reference and session.wrapped_key:
            record["draft"] = self._tips.vault.seal(session.wrapped_key, session.choices.reference, "sms-draft",
                                                    json.dumps(session.texts))
        pipe.delete(key)
        pipe.hset(key, mapping=record)
        pipe.expire(key, RECORD_SECONDS)
        pipe.zadd(keys.SMS_IDLE, {session.key: now + IDLE_SECONDS})
        self._cleanup.mark(pipe, session.message_sids)

    def close(self, session_key: str, extra_sid: str | None = None, idle_before: float | None = None) -> str | None:
        """End a session: store its report as a tip (once), queue the clean-up, delete it.

        Returns the reference when a report was stored. With `idle_before`, only a session
        whose idle deadline has passed is closed (the clock), so a text arriving meanwhile wins.
        """
        key = keys.sms_session(session_key)

        def store(pipe: redis.client.Pipeline) -> str | None:
            deadline = pipe.hget(key, "deadline")
            if idle_before is not None and deadline is not None and int(deadline) > idle_before:
                return None
            session = self.load(pipe, session_key)
            reference = None
            if session and session.texts and session.choices.reference:
                reference = session.choices.reference
                pipe.watch(key, keys.tip(reference))
                self._tips.add_text_part(pipe, self._new_part(session), "\n".join(session.texts),
                                         new_wrapped_key=session.wrapped_key)
                pipe.set(keys.sms_closed(session_key), reference, ex=GRACE_SECONDS)
            else:
                pipe.multi()
            pipe.delete(key)
            pipe.zrem(keys.SMS_IDLE, session_key)
            sids = (session.message_sids if session else []) + ([extra_sid] if extra_sid else [])
            self._cleanup.enqueue(sids, pipe=pipe)
            return reference

        return atomically(self._redis, [key], store)

    def _new_part(self, session: Session) -> NewPart:
        """The finished report's part: a topic never chosen takes the menus' fallback."""
        choices = self._menus.resolved(session.choices)
        return NewPart(choices=choices, pin_hash=session.pin_hash, channel="sms",
                       urgent=self._menus.is_urgent(choices), seconds=0)

    def close_idle(self, now: float) -> int:
        """Close every session idle past its deadline (the clock calls this). Returns how many."""
        closed = 0
        for member in self._redis.zrangebyscore(keys.SMS_IDLE, "-inf", now):
            session_key = as_text(member)
            if not self.exists(session_key):
                self._redis.zrem(keys.SMS_IDLE, session_key)  # its record expired: nothing left to store
                continue
            self.close(session_key, idle_before=now)
            closed += 1
        return closed
