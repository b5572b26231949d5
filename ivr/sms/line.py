"""The SMS conversation: from a text (already stripped by the edge) to the reply's words.

Order of checks, and why:
1. STOP, START, HELP are answered at once and store nothing (no session, no counter); the
   provider's record of the text is deleted like any other (a sealed job, gone once run).
2. A flood from one session key gets a polite reply and its text is not kept: not here,
   and not at the provider either (the text is deleted there too).
3. A retried webhook (same MessageSid) gets the reply the first attempt got, and is not
   processed again.
4. Photos are refused (they carry location); the message is deleted at the provider.
5. `REF <reference> PIN <pin> text` adds to an existing tip, voice or SMS, once the PIN
   guard (ivr/core/pin_guard.py) has checked the PIN.
6. Just after DONE, a text joins the tip it closed.
7. Otherwise the conversation: language, category, report, DONE.
"""

from __future__ import annotations

import secrets

import redis

from ivr.core import Core, keys
from ivr.core import sms_words as words
from ivr.core.choices import Choices
from ivr.core.pin_guard import PinGuard
from ivr.core.redis_values import as_bytes, as_text
from ivr.core.references import new_pin, new_reference
from ivr.core.sms_cleanup import MessageCleanup
from ivr.core.sms_sessions import CATEGORY, LANGUAGE, REPORT, Session, SessionStore
from ivr.core.tips import PIN_HASHER, NewPart
from ivr.core.transactions import atomically
from ivr.core.vault import KeyedDigest, Sealer
from ivr.edge import InboundMessage

# A first text at least this long is taken as the report itself: one message is enough.
LONG_REPORT_CHARACTERS = 60
RATE_LIMIT_TEXTS = 20
RATE_WINDOW_SECONDS = 600
SEEN_SECONDS = 15 * 60


class SmsLine:
    """The conversation over the core's sessions, clean-up and PIN guard: the clock closes
    idle sessions and the console reads the guard through those same objects."""

    def __init__(self, core: Core) -> None:
        self._redis = core.redis
        self._menus = core.menus
        self._tips = core.tips
        self.cleanup: MessageCleanup = core.sms.cleanup
        self.sessions: SessionStore = core.sms.sessions
        self.pin_guard: PinGuard = core.pin_guard
        self._message_key = KeyedDigest(core.settings.secret_key, "message")
        self._reply_sealer = Sealer(core.settings.secret_key, "sms-reply")

    def receive(self, message: InboundMessage, now: float) -> str:
        """The reply to `message` (empty: send none)."""
        body = words.clean(message.body)
        keyword = words.keyword(body)
        sid = [message.message_sid] if message.message_sid else []
        if keyword in ("STOP", "START", "HELP"):
            self.cleanup.enqueue(sid)  # the provider's record of it holds the number
            return self._menus.sms_text(None, keyword.lower())
        session_key = self._session_key(message)
        if self._too_many(session_key):
            self.cleanup.enqueue(sid)
            return self._menus.sms_text(None, "too_many")
        seen = keys.sms_seen(self._message_key(message.message_sid or secrets.token_hex(16)))
        if not self._redis.set(seen, b"", nx=True, ex=SEEN_SECONDS):
            earlier = self._redis.get(seen)
            return self._reply_sealer.open(as_bytes(earlier)).decode() if earlier else ""
        try:
            reply = self._answer(message, body, keyword, session_key, now)
        except BaseException:
            self._redis.delete(seen)  # not handled: a retry must be processed afresh
            raise
        self._redis.set(seen, self._reply_sealer.seal(reply.encode()), xx=True, keepttl=True)
        return reply

    def _session_key(self, message: InboundMessage) -> str:
        """Of today's and (just after midnight) yesterday's keys, the one with a live conversation."""
        for candidate in message.session_keys:
            if self._redis.exists(keys.sms_session(candidate), keys.sms_closed(candidate)):
                return candidate
        return message.session_keys[0] if message.session_keys else secrets.token_hex(16)

    def _too_many(self, session_key: str) -> bool:
        rate = keys.sms_rate(session_key)
        with self._redis.pipeline() as pipe:
            # SET NX EX starts the window once; INCR keeps its TTL (no EXPIRE NX: Redis 6.2 has none).
            pipe.set(rate, 0, ex=RATE_WINDOW_SECONDS, nx=True)
            pipe.incr(rate)
            _, count = pipe.execute()
        return int(count) > RATE_LIMIT_TEXTS

    def _answer(self, message: InboundMessage, body: str, keyword: str | None, session_key: str, now: float) -> str:
        sid = [message.message_sid] if message.message_sid else []
        if message.num_media > 0:
            self.cleanup.enqueue(sid)
            return self._menus.sms_text(self._language_of(session_key), "photos")
        returning = words.returning(body)
        if returning:
            self.cleanup.enqueue(sid)
            return self._add_for_returning(returning, self._language_of(session_key))
        closed = self._redis.get(keys.sms_closed(session_key))
        if closed and not self.sessions.exists(session_key):
            reference = as_text(closed)
            if body and keyword != "DONE":
                self._add_text(reference, body)
            self.cleanup.enqueue(sid)
            return self._menus.sms_text(None, "late_addition", reference=reference)
        if keyword == "DONE":
            return self._done(session_key, message.message_sid)
        return self._converse(session_key, body, message.message_sid, now)

    def _language_of(self, session_key: str) -> str | None:
        raw = self._redis.hget(keys.sms_session(session_key), "language")
        return as_text(raw) if raw else None

    # -- the conversation ---------------------------------------------------------------

    def _converse(self, session_key: str, body: str, message_sid: str | None, now: float) -> str:
        key = keys.sms_session(session_key)

        def step(pipe: redis.client.Pipeline) -> str:
            session = self.sessions.load(pipe, session_key)
            session, reply = self._step(session or Session(key=session_key, stage=""), body)
            if message_sid:
                session.message_sids.append(message_sid)
            pipe.multi()
            self.sessions.save(pipe, session, now)
            return reply

        return atomically(self._redis, [key], step)

    def _step(self, session: Session, body: str) -> tuple[Session, str]:
        """The next state of the conversation and the reply, for one text."""
        menus, lang = self._menus, session.choices.language
        if not session.stage:  # the first text
            if len(body) >= LONG_REPORT_CHARACTERS:
                session.stage, session.choices = CATEGORY, session.choices.but(language=menus.fallback_language)
                return session, self._take_text(session, body, with_category=True)
            session.stage = LANGUAGE
            return session, menus.sms_text(None, "welcome")
        if session.stage == LANGUAGE:
            chosen = menus.language_for_digit(body)
            if chosen or session.attempts + 1 >= menus.step("language").plays or len(body) >= LONG_REPORT_CHARACTERS:
                session.stage, session.attempts = CATEGORY, 0
                session.choices = session.choices.but(language=chosen or menus.fallback_language)
                if not chosen and len(body) >= LONG_REPORT_CHARACTERS:
                    return session, self._take_text(session, body, with_category=True)
                return session, menus.sms_text(session.choices.language, "category_menu")
            session.attempts += 1
            return session, menus.sms_text(None, "welcome")
        if session.stage == CATEGORY:
            category = menus.category_for_digit(body)
            if category:
                session.stage, session.choices = REPORT, session.choices.but(category=category.id)
                return session, menus.sms_text(lang, "category_noted" if session.texts else "report_prompt")
            if not body:
                return session, menus.sms_text(lang, "empty")
            if (not session.texts and len(body) < LONG_REPORT_CHARACTERS
                    and session.attempts + 1 < menus.step("category").plays):
                session.attempts += 1
                return session, menus.sms_text(lang, "not_understood")
            # Out of order, or a report without a topic: keep every word, ask the topic again.
            first = not session.texts
            reply = self._take_text(session, body, with_category=True)
            return session, reply if first else menus.sms_text(lang, "not_understood")
        if not body:
            return session, menus.sms_text(lang, "empty")
        return session, self._take_text(session, body, with_category=False)

    def _take_text(self, session: Session, body: str, with_category: bool) -> str:
        """Add report text; the first text mints the reference and PIN, given in this reply."""
        lang = session.choices.language
        session.texts.append(body)
        if session.choices.reference:
            return self._menus.sms_text(lang, "added")
        pin, reference = new_pin(), new_reference()
        session.choices, session.pin_hash = session.choices.but(reference=reference), PIN_HASHER.hash(pin)
        session.wrapped_key = self._tips.vault.new_tip_key(reference)
        key = "reference_and_category" if with_category else "reference"
        return self._menus.sms_text(lang, key, reference=reference, pin=pin)

    def _done(self, session_key: str, message_sid: str | None) -> str:
        lang = self._language_of(session_key)
        reference = self.sessions.close(session_key, extra_sid=message_sid)
        if reference is None:
            return self._menus.sms_text(lang, "done_empty")
        return self._menus.sms_text(lang, "done", reference=reference)

    # -- more for an existing tip -------------------------------------------------------

    def _add_for_returning(self, returning: words.Returning, lang: str | None) -> str:
        if not returning.text:
            return self._menus.sms_text(lang, "returning_needs_text")
        if not self.pin_guard.proves(returning.reference, returning.pin):
            return self._menus.sms_text(lang, "returning_refused")  # one answer, whatever was wrong
        self._add_text(returning.reference, returning.text)
        return self._menus.sms_text(lang, "returning_added", reference=returning.reference)

    def _add_text(self, reference: str, text: str) -> None:
        atomically(self._redis, [keys.tip(reference)], lambda pipe: self._tips.add_text_part(
            pipe, NewPart(choices=Choices(reference=reference), pin_hash=None, channel="sms", urgent=False,
                          seconds=0), text))

