"""A handler's work on a tip: claim, summarise, tag, triage, note, link, pass on, close.

The tip record (`ivr.core.tips`) holds what came in; the case (`keys.case`) holds what the
handlers made of it. Text a handler writes (summary, drafts, notes) is sealed under the
tip's own data key, so shredding a tip shreds the work on it too.

Claims are leases on the handlers' queue (`ivr.core.handler_queue`): only the holder may
change a case, each change renews the lease, and a tip left alone past the lease goes to
the next handler who claims. A draft is per handler and is saved even when the lease has
gone to someone else, so a lapsed lease or a closed tab loses nothing.

The summary is the only text that leaves: before a pass-on every flag
(`ivr.console.flags`) must be resolved (edited away) or confirmed by the handler.
"""

from __future__ import annotations

import json

import redis

from ivr.console.cases import (
    CLOSED,
    HANDLER_TRIAGE,
    IN_REVIEW,
    NEW,
    PASSED_ON,
    Case,
    CaseworkError,
    Finished,
    FlagsUnresolved,
    Note,
    NotReady,
    NotYours,
    Package,
    UnknownTip,
    received_day,
)
from ivr.console.catalogue import ConsoleCatalogue
from ivr.console.finishing import Finishing
from ivr.console.flags import find_flags
from ivr.console.hotspots import HotspotCounts
from ivr.core import keys
from ivr.core.coarse_time import current_hour
from ivr.core.handler_queue import NOBODY, Claim, HandlerQueue, NotHeld
from ivr.core.redis_values import HashFields, as_bytes, as_text
from ivr.core.references import is_valid_reference
from ivr.core.statuses import Triage
from ivr.core.tips import Tip, TipStore
from ivr.core.transactions import atomically

MAX_SUMMARY_CHARACTERS = 4000
MAX_NOTE_CHARACTERS = 2000


class Casework:
    def __init__(self, connection: redis.Redis, tips: TipStore, catalogue: ConsoleCatalogue,
                 lease_seconds: int) -> None:
        self._redis = connection
        self.tips = tips
        self._queue: HandlerQueue = tips.queue
        self._catalogue = catalogue
        self.lease_seconds = lease_seconds
        self._finishing = Finishing(connection, tips, HotspotCounts(connection))

    # -- claims ----------------------------------------------------------------------------

    def claim_next(self, handler: str) -> str | None:
        """The next tip for `handler`: one whose lease lapsed, else the next new one, urgent first."""
        claim = self._queue.claim_next(handler, take_over_after_ms=self.lease_seconds * 1000)
        if claim is None:
            return None
        self._remember(claim)
        if self.tips.triage(claim.tip_id) == NEW:
            self.tips.set_triage(claim.tip_id, IN_REVIEW)
        return claim.tip_id

    def _remember(self, claim: Claim) -> None:
        self._redis.hset(keys.case(claim.tip_id), mapping={"stream": claim.stream, "entry": claim.entry_id})

    def waiting(self) -> dict[str, int]:
        """Unclaimed and claimed tips: urgent, returning (a tipster came back, nobody has taken
        it) and the rest (for the dashboard)."""
        counts = self._queue.waiting()
        urgent, returning, normal = (counts[stream] for stream in keys.HANDLER_QUEUES)
        return {"urgent": urgent["unclaimed"], "returning": returning["unclaimed"], "normal": normal["unclaimed"],
                "claimed": urgent["claimed"] + returning["claimed"] + normal["claimed"]}

    def held_by(self, handler: str) -> list[str]:
        return [claim.tip_id for claim in self._queue.held_by(handler)]

    def with_news(self, references: list[str]) -> set[str]:
        """Those of `references` the tipster came back to since their holder last opened them."""
        with self._redis.pipeline(transaction=False) as pipe:
            for reference in references:
                pipe.hexists(keys.case(reference), "news")
            flags = pipe.execute()
        return {reference for reference, news in zip(references, flags, strict=True) if news}

    def take_news(self, reference: str, handler: str) -> bool:
        """The holder opened a tip its tipster came back to: it is theirs now (the lease is
        renewed) and no longer news. False when there was no news or it is not theirs."""
        if not self._redis.hexists(keys.case(reference), "news"):
            return False
        try:
            self.renew(reference, handler)
        except (NotYours, Finished):
            return False
        # Cleared after the renew and before the page reads the tip: news arriving after
        # this sets it again, so nothing the page does not show is marked as taken.
        self._redis.hdel(keys.case(reference), "news")
        return True

    def holder(self, reference: str) -> str | None:
        """Who holds the tip now (None: nobody, including a returning tip nobody has taken)."""
        entry = self._entry(reference)
        lease = self._queue.lease(*entry) if entry else None
        return lease.holder if lease and lease.holder != NOBODY else None

    def lease_left_seconds(self, reference: str) -> int | None:
        entry = self._entry(reference)
        lease = self._queue.lease(*entry) if entry else None
        return max(0, self.lease_seconds - lease.idle_ms // 1000) if lease else None

    def renew(self, reference: str, handler: str) -> None:
        """Check `handler` holds the tip and restart the lease; every change calls this first."""
        entry = self._entry(reference)
        if self._finished(reference):
            raise Finished("This tip has been passed on or closed; it cannot be changed.")
        if entry is None:
            raise NotYours(None)
        try:
            self._queue.renew(*entry, handler)
        except NotHeld as lost:
            raise NotYours(lost.holder) from None

    def release(self, reference: str, handler: str) -> None:
        entry = self._entry(reference)
        if entry is None:
            raise NotYours(None)
        try:
            self._queue.release(*entry, handler, self.lease_seconds * 1000)
        except NotHeld as lost:
            raise NotYours(lost.holder) from None

    def reassign(self, reference: str, to_handler: str) -> None:
        entry = self._entry(reference)
        if entry is None or self._finished(reference):
            raise CaseworkError("Only a tip that someone has claimed, and that is still open, can be reassigned.")
        self._queue.reassign(*entry, to_handler)

    def _entry(self, reference: str) -> tuple[str, str] | None:
        stream, entry = self._redis.hmget(keys.case(reference), "stream", "entry")
        return (as_text(stream), as_text(entry)) if stream and entry else None

    def _finished(self, reference: str) -> bool:
        return self._redis.hget(keys.case(reference), "finished") is not None

    # -- reading ---------------------------------------------------------------------------

    def tip(self, reference: str) -> Tip:
        tip = self.tips.get(reference) if is_valid_reference(reference) else None
        if tip is None:
            raise UnknownTip("There is no tip with that reference.")
        return tip

    def case(self, reference: str) -> Case:
        fields = {as_text(k): as_bytes(v) for k, v in self._redis.hgetall(keys.case(reference)).items()}
        text = {k: as_text(v) for k, v in fields.items() if not k.startswith(("summary", "draft:", "note:"))}
        notes = []
        for index in range(1, int(text.get("notes", 0)) + 1):
            note = json.loads(self.tips.open_for(reference, f"case:note:{index}", fields[f"note:{index}"]))
            notes.append(Note(**note))
        summary = self.tips.open_for(reference, "case:summary", fields["summary"]) if "summary" in fields else ""
        return Case(reference=reference, summary=summary, area=text.get("area"), category=text.get("category"),
                    partner=text.get("partner"), close_reason=text.get("close_reason"),
                    duplicate_of=text.get("duplicate_of"),
                    duplicates=tuple(sorted(k[4:] for k in text if k.startswith("dup:"))),
                    notes=tuple(notes), holder=self.holder(reference),
                    finished=Triage(text["finished"]) if "finished" in text else None,
                    reopened_from=Triage(text["reopened_from"]) if "reopened_from" in text else None,
                    reopened=int(text.get("reopened", 0)), news="news" in text,
                    passed_hour=text.get("passed_hour"), supplement_to=text.get("supplement_to"))

    def draft(self, reference: str, handler: str) -> str | None:
        sealed = self._redis.hget(keys.case(reference), f"draft:{handler}")
        return self.tips.open_for(reference, f"case:draft:{handler}", as_bytes(sealed)) if sealed else None

    # -- changes (the holder only) ---------------------------------------------------------

    def save_draft(self, reference: str, handler: str, text: str) -> bool:
        """Keep `handler`'s draft whatever happens; True when they still hold the tip (renewed)."""
        self.tip(reference)
        text = _bounded(text, MAX_SUMMARY_CHARACTERS, "A summary")
        self._redis.hset(keys.case(reference), f"draft:{handler}",
                         self.tips.seal_for(reference, f"case:draft:{handler}", text))
        try:
            self.renew(reference, handler)
        except (NotYours, Finished):
            return False
        return True

    def save_summary(self, reference: str, handler: str, summary: str, area: str | None,
                     category: str | None) -> None:
        self.renew(reference, handler)
        summary = _bounded(summary, MAX_SUMMARY_CHARACTERS, "A summary").strip()
        if area and area not in self._catalogue.areas:
            raise CaseworkError("Choose an area from the list.")
        if category and category not in self._catalogue.categories:
            raise CaseworkError("Choose a category from the list.")
        mapping: HashFields = {"summary": self.tips.seal_for(reference, "case:summary", summary)}
        mapping.update({name: value for name, value in (("area", area), ("category", category)) if value})
        with self._redis.pipeline() as pipe:
            pipe.hset(keys.case(reference), mapping=mapping)
            pipe.hdel(keys.case(reference), f"draft:{handler}")  # saved: the draft is spent
            pipe.execute()

    def set_triage(self, reference: str, handler: str, triage: str) -> None:
        """`triage` is a code from the form; only the handler-set ones are accepted."""
        if triage not in HANDLER_TRIAGE:
            raise CaseworkError(f"Choose one of: {', '.join(self._catalogue.triage[t] for t in HANDLER_TRIAGE)}.")
        self.renew(reference, handler)
        self.tips.set_triage(reference, Triage(triage))

    def add_note(self, reference: str, handler: str, text: str) -> None:
        """An internal note: seen by handlers only, never by the tipster or in a package."""
        self.renew(reference, handler)
        text = _bounded(text, MAX_NOTE_CHARACTERS, "A note").strip()
        if not text:
            raise CaseworkError("The note is empty.")
        key = keys.case(reference)

        def append(pipe: redis.client.Pipeline) -> None:  # the count and the note together: no gap
            index = int(pipe.hget(key, "notes") or 0) + 1
            note = json.dumps({"author": handler, "hour": current_hour(), "text": text})
            pipe.multi()
            pipe.hset(key, mapping={"notes": index,
                                    f"note:{index}": self.tips.seal_for(reference, f"case:note:{index}", note)})

        atomically(self._redis, [key], append)

    def link_duplicate(self, reference: str, handler: str, original: str) -> None:
        """Mark this tip as describing the same thing as `original` (an appeal brings many)."""
        self.renew(reference, handler)
        original = "".join(ch for ch in original if ch.isdigit())
        if original == reference:
            raise CaseworkError("A tip cannot be a duplicate of itself.")
        self.tip(original)
        with self._redis.pipeline() as pipe:
            pipe.hset(keys.case(reference), "duplicate_of", original)
            pipe.hset(keys.case(original), f"dup:{reference}", current_hour())
            pipe.execute()

    def pass_on(self, reference: str, handler: str, partner: str, confirmed: set[str],
                summary_version: str, parts_seen: int | None = None) -> Package:
        """Disseminate: every flag in the summary must be confirmed; the tip leaves the queue.
        `parts_seen`: how many parts the handler's page showed (None: not checked)."""
        self.renew(reference, handler)
        case = self.case(reference)
        if partner not in self._catalogue.partners:
            raise NotReady("Choose who it is passed on to.")
        missing = [what for what, value in (("a summary", case.summary), ("an area", case.area),
                                            ("a category", case.category)) if not value]
        if missing:
            raise NotReady(f"Before passing it on, add {' and '.join(missing)}.")
        if summary_version != case.summary_version:
            raise NotReady("The summary changed since you checked it; check it again.")
        unresolved = [flag for flag in find_flags(case.summary) if flag.fingerprint not in confirmed]
        if unresolved:
            raise FlagsUnresolved(unresolved)
        self._finishing.finish(reference, PASSED_ON, {"partner": partner, "passed_hour": current_hour()},
                              parts_seen)
        return self.package(reference)

    def close(self, reference: str, handler: str, reason: str, parts_seen: int | None = None) -> None:
        self.renew(reference, handler)
        if reason not in self._catalogue.close_reasons:
            raise CaseworkError("Choose a reason for closing it.")
        self._finishing.finish(reference, CLOSED, {"close_reason": reason}, parts_seen)

    # -- what leaves -----------------------------------------------------------------------

    def package(self, reference: str) -> Package:
        case = self.case(reference)
        if case.finished != PASSED_ON:
            raise NotReady("Only a tip that has been passed on has a package.")
        tip = self.tip(reference)
        return Package(reference=reference, date=received_day(tip).isoformat(),
                       category=self._catalogue.categories.get(case.category or "", "Not given"),
                       area=self._catalogue.areas.get(case.area or "", "Not given"), summary=case.summary,
                       supplement_to=case.supplement_to[:10] if case.supplement_to else None)


def _bounded(text: str, limit: int, what: str) -> str:
    text = "".join(ch for ch in (text or "") if ch in "\n\t" or ch.isprintable())
    if len(text) > limit:
        raise CaseworkError(f"{what} can be at most {limit} characters.")
    return text
