"""A returning tipster's SMS conversation: what their next text does after a proven
`REF <reference> PIN <pin>`.

A text has no call to carry state in: the tipster proves their PIN in one text and answers
in the next. Between the two, `tipline:sms:returning:<session key>` holds which reference
they proved, in which language, the question they were shown (its number: an answer is
filed under the question the tipster saw, even when a handler has asked another since)
and whether a CLOSE waits to be confirmed. Their next text ends it.

Privacy, and why:
- The record is sealed (`Sealer`, its own purpose): Redis alone does not show which tip
  a phone is texting about.
- It is named by the session key, like every SMS record, and lives no longer than the line
  needs to know whose answer a text is: the session's idle lifetime (IDLE_SECONDS), or
  CLOSE_CONFIRM_SECONDS while a CLOSE waits. It holds no count and no time of any text; the
  answer's part carries only the coarse hour (`ivr.core.follow_up`).
- Its deadline is inside the sealed record and checked against the time the webhook
  arrived, so a late text is judged by when it came, and Redis's TTL only clears it away.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis

from ivr.core import keys
from ivr.core.prompts import CatalogueError, Menus
from ivr.core.redis_values import as_bytes
from ivr.core.segments import MAX_SEGMENTS, segment_count
from ivr.core.sms_sessions import IDLE_SECONDS
from ivr.core.statuses import TipsterStatus
from ivr.core.vault import CannotOpen, Sealer, Secrets

# "Reply CLOSE again within 10 minutes": the words of the `close_confirm` reply.
CLOSE_CONFIRM_SECONDS = 10 * 60


@dataclass(frozen=True)
class ReturningConversation:
    """A proven reference waiting for the tipster's next text."""

    reference: str
    language: str  # the tip's: replies about it are in the language the tip was given in
    answers: int | None  # the question shown; None: the next text is new information
    closing: bool  # a CLOSE waits for its confirmation
    until: float  # seconds since the epoch; a text after this starts afresh

    def continues_with(self, keyword: str | None) -> bool:
        """Does a text (the keyword it is, if any) continue this conversation? CLOSE does; while
        no CLOSE waits, so does anything but DONE. Any other text ends it, and is taken like
        a text outside it."""
        return keyword == "CLOSE" or (not self.closing and keyword != "DONE")


class ReturningConversations:
    """The returning conversations in Redis, one per session key at most."""

    def __init__(self, secret_keys: Secrets, connection: redis.Redis) -> None:
        self._redis = connection
        self._sealer = Sealer(secret_keys, "sms-returning")

    def start(self, session_key: str, reference: str, language: str, answers: int | None, now: float) -> None:
        """The next text answers question `answers` (None: adds new information)."""
        self._save(session_key, ReturningConversation(reference, language, answers, False, now + IDLE_SECONDS),
                   IDLE_SECONDS)

    def await_close(self, session_key: str, reference: str, language: str, now: float) -> None:
        """The next text closes the reference if it is CLOSE, within CLOSE_CONFIRM_SECONDS."""
        self._save(session_key, ReturningConversation(reference, language, None, True, now + CLOSE_CONFIRM_SECONDS),
                   CLOSE_CONFIRM_SECONDS)

    def current(self, session_key: str, now: float) -> ReturningConversation | None:
        """The conversation a text arriving at `now` continues, or None (none, or past its deadline)."""
        sealed = self._redis.get(keys.sms_returning(session_key))
        if sealed is None:
            return None
        try:
            conversation = ReturningConversation(**json.loads(self._sealer.open(as_bytes(sealed))))
        except (CannotOpen, ValueError, TypeError):  # sealed under an old SECRET_KEY, or an old shape
            return None
        return conversation if now <= conversation.until else None

    def end(self, session_key: str) -> None:
        self._redis.delete(keys.sms_returning(session_key))

    def _save(self, session_key: str, conversation: ReturningConversation, seconds: int) -> None:
        self._redis.set(keys.sms_returning(session_key), self._sealer.seal(json.dumps(asdict(conversation)).encode()),
                        ex=seconds)


def status_reply(menus: Menus, language: str, status: TipsterStatus) -> str:
    """What a returning tipster with no question waiting reads: the status, and that they may add more."""
    return f"{menus.sms_text(language, f'status_{status}')} {menus.sms_text(language, 'returning_add_more')}"


def check_status_replies(menus: Menus) -> None:
    """Every status reply, in every language, fits MAX_SEGMENTS (the catalogue's own check
    sees each prompt alone, not the two joined): refused at start-up, not at 3 a.m."""
    for language in menus.languages:
        for status in TipsterStatus:
            reply = status_reply(menus, language, status)
            if segment_count(reply) > MAX_SEGMENTS:
                raise CatalogueError(f"config/prompts/{language}.json: sms replies 'status_{status}' and "
                                     f"'returning_add_more' together need {segment_count(reply)} segments; "
                                     f"shorten one so the two fit in {MAX_SEGMENTS}.")
