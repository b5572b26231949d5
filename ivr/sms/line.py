"""The SMS conversation: from a text (already stripped by the edge) to the reply's words.

Order of checks, and why:
1. STOP, START, HELP and SUPPORT are answered at once and store nothing (no session, no
   counter); the provider's record of the text is deleted like any other (a sealed job,
   gone once run). SUPPORT gets the support services (ivr/core/support.py) in the
   conversation's language.
2. A flood from one session key gets a polite reply and its text is not kept: not here,
   and not at the provider either (the text is deleted there too).
3. A retried webhook (same MessageSid) gets the reply the first attempt got, and is not
   processed again.
4. Photos are refused (they carry location); the message is deleted at the provider.
5. `REF <reference> PIN <pin> ...` is for an existing tip, voice or SMS, once the PIN guard
   (ivr/core/pin_guard.py) has checked the PIN: text after the PIN answers the waiting
   question or adds to the tip at once (ivr/core/follow_up.py), or, for a tip deleted under
   the retention rules, says it was dealt with and deleted; CLOSE asks for a
   confirmation; nothing gets the waiting question, else the tip's status, and starts a
   returning conversation (ivr/core/sms_returning.py). Replies are in the tip's language.
6. In a returning conversation the next text is the answer (or new information), or the
   CLOSE that confirms a close. DONE, or anything but CLOSE while a close waits, ends it
   and is taken like any other text, below.
7. Just after DONE, a text joins the tip it closed.
8. Otherwise the conversation: language, category, report, DONE.
"""

from __future__ import annotations

import logging
import secrets

import redis

from ivr.core import Core, keys
from ivr.core import sms_words as words
from ivr.core.choices import Choices
from ivr.core.digest_moves import adopt
from ivr.core.pin_guard import PinGuard, Proof
from ivr.core.pin_pool import mint_pin
from ivr.core.redis_values import as_bytes, as_text
from ivr.core.references import new_reference
from ivr.core.replication import NotReplicated
from ivr.core.sms_cleanup import MessageCleanup
from ivr.core.sms_returning import (
    ReturningConversation,
    ReturningConversations,
    check_status_replies,
    status_reply,
)
from ivr.core.sms_sessions import CATEGORY, LANGUAGE, REPORT, Session, SessionStore
from ivr.core.tips import NewPart, ShreddedTip
from ivr.core.transactions import atomically
from ivr.core.vault import KeyedDigest, Sealer
from ivr.edge import InboundMessage

log = logging.getLogger(__name__)

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
        self.follow_up = core.follow_up
        self.returning = ReturningConversations(core.settings.secret_keys, core.redis)
        self._support = core.support
        self._storage = core.storage
        self._replicas = core.replicas
        self._pin_pool = core.pin_pool
        self._message_key = KeyedDigest(core.settings.secret_keys, "message")
        self._reply_sealer = Sealer(core.settings.secret_keys, "sms-reply")
        check_status_replies(core.menus)

    def receive(self, message: InboundMessage, now: float) -> str:
        """The reply to `message` (empty: send none)."""
        body = words.clean(message.body)
        keyword = words.keyword(body)
        sid = [message.message_sid] if message.message_sid else []
        refused = self._storage.refuses_writes()  # production, while Redis could lose what we store
        if keyword in ("STOP", "START", "HELP", "SUPPORT"):
            if not refused:  # else the inbound sweep deletes it once Redis is fixed
                self.cleanup.enqueue(sid)  # the provider's record of it holds the number
            if keyword == "SUPPORT":
                return self._support.for_language(self._language_of(self._session_key(message))).texted()
            return self._menus.sms_text(None, keyword.lower())
        if refused:  # stored nowhere: the provider keeps the text, and the inbound sweep takes it in later
            return self._menus.sms_text(None, "failure")
        session_key = self._session_key(message)
        if self._too_many(session_key):
            self.cleanup.enqueue(sid)
            return self._menus.sms_text(None, "too_many")
        message_sid = message.message_sid or secrets.token_hex(16)
        seen = keys.sms_seen(adopt(self._redis, self._message_key.every(message_sid), keys.sms_seen))
        if not self._redis.set(seen, b"", nx=True, ex=SEEN_SECONDS):
            earlier = self._redis.get(seen)
            return self._reply_sealer.open(as_bytes(earlier)).decode() if earlier else ""
        try:
            reply = self._answer(message, body, keyword, session_key, now)
        except BaseException:
            self._redis.delete(seen)  # not handled: a retry must be processed afresh
            raise
        self._redis.set(seen, self._reply_sealer.seal(reply.encode()), xx=True, keepttl=True)
        try:
            self._replicas.confirm()  # what the reply says is kept is on a replica (REDIS_REPLICA_ACKS)
        except NotReplicated as error:  # kept on the master only: the tipster may send it again
            log.warning("a text is stored but not yet on a replica: %s", error)
            return self._menus.sms_text(None, "failure")
        return reply

    def _session_key(self, message: InboundMessage) -> str:
        """Of today's and (just after midnight) yesterday's keys, the one with a live conversation."""
        for candidate in message.session_keys:
            if self._redis.exists(keys.sms_session(candidate), keys.sms_closed(candidate),
                                  keys.sms_returning(candidate)):
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
        quoted = words.returning(body)
        if quoted:
            self.cleanup.enqueue(sid)
            return self._quoted(quoted, session_key, now)
        returning = self.returning.current(session_key, now)
        if returning and returning.continues_with(keyword):
            self.cleanup.enqueue(sid)
            return self._returned(returning, body, keyword, session_key, now)
        if returning:  # DONE, or a close not confirmed: it ends, and this text is taken like any other
            self.returning.end(session_key)
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
        minted, reference = self._pin_pool.take() or mint_pin(), new_reference()
        pin, session.choices, session.pin_hash = minted.pin, session.choices.but(reference=reference), minted.pin_hash
        session.wrapped_key = self._tips.vault.new_tip_key(reference, self._tips.clock())
        key = "reference_and_category" if with_category else "reference"
        return self._menus.sms_text(lang, key, reference=reference, pin=pin)

    def _done(self, session_key: str, message_sid: str | None) -> str:
        lang = self._language_of(session_key)
        reference = self.sessions.close(session_key, extra_sid=message_sid)
        if reference is None:
            return self._menus.sms_text(lang, "done_empty")
        return self._menus.sms_text(lang, "done", reference=reference)

    # -- returning tipsters -------------------------------------------------------------

    def _quoted(self, quoted: words.Returning, session_key: str, now: float) -> str:
        """`REF <reference> PIN <pin> ...`: once proven, text answers at once, CLOSE asks for its
        confirmation, and nothing starts a returning conversation with the question or the status."""
        proof = self.pin_guard.check(quoted.reference, quoted.pin)
        if proof is not Proof.PROVEN:  # whatever was wrong; or the tip was deleted under the retention rules
            deleted = proof is Proof.DELETED
            return self._menus.sms_text(self._language_of(session_key), "report_deleted" if deleted
                                        else "returning_refused")
        self.returning.end(session_key)  # a proven quote starts afresh
        hears = self.follow_up.for_tipster(quoted.reference)
        if hears is None:
            return self._menus.sms_text(self._language_of(session_key), "returning_gone")
        reference, lang = hears.reference, hears.language
        shown = hears.question.number if hears.question else None
        if words.keyword(quoted.text) == "CLOSE":
            self.returning.await_close(session_key, reference, lang, now)
            return self._menus.sms_text(lang, "close_confirm")
        if quoted.text:
            return self._add_for_returning(reference, lang, quoted.text, shown)
        self.returning.start(session_key, reference, lang, shown, now)
        if hears.question:
            return self._menus.sms_text(lang, "question", question=hears.question.text)
        return status_reply(self._menus, lang, hears.status)

    def _returned(self, returning: ReturningConversation, body: str, keyword: str | None, session_key: str,
                  now: float) -> str:
        """The next text of a returning conversation: the CLOSE confirmed or asked for, or the answer."""
        reference, lang = returning.reference, returning.language
        if keyword == "CLOSE" and returning.closing:
            self.returning.end(session_key)
            closed = self.follow_up.close_reference(reference)
            return self._menus.sms_text(lang, "reference_closed" if closed else "returning_gone")
        if keyword == "CLOSE":  # proven a moment ago: the same as REF .. PIN .. CLOSE
            self.returning.await_close(session_key, reference, lang, now)
            return self._menus.sms_text(lang, "close_confirm")
        if not body:
            return self._menus.sms_text(lang, "empty")  # still waiting for the answer
        reply = self._add_for_returning(reference, lang, body, returning.answers)
        self.returning.end(session_key)
        return reply

    def _add_for_returning(self, reference: str, lang: str, text: str, answers: int | None) -> str:
        """A returning tipster's text joins their tip: the answer to question `answers` (the one
        they were shown), or new information; the tip goes back to a handler."""
        if not self._tips.pin_hash(reference):  # closed since it was proven (from another phone)
            return self._menus.sms_text(lang, "returning_gone")
        try:
            index = self.follow_up.answer_by_text(reference, text, answers)
        except ShreddedTip:  # shredded while the answer was filed: the question cannot be opened
            index = None
        if index is None:
            return self._menus.sms_text(lang, "returning_gone")
        return self._menus.sms_text(lang, "returning_answered" if answers else "returning_added", reference=reference)

    # -- just after DONE -------------------------------------------------------------------

    def _add_text(self, reference: str, text: str) -> None:
        """A late addition joins the tip its session just closed, as part of the report."""
        atomically(self._redis, [keys.tip(reference)], lambda pipe: self._tips.add_text_part(
            pipe, NewPart(choices=Choices(reference=reference), pin_hash=None, channel="sms", urgent=False,
                          seconds=0), text))
