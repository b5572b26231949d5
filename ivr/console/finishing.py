"""A tip passed on or closed: the one transaction that finishes a case (`Finishing.finish`).

`Casework.pass_on` and `Casework.close` check what a handler asked for; this writes it.
"""

from __future__ import annotations

import redis

from ivr.console.cases import PASSED_ON, Finished, NewsArrived, UnknownTip, received_day
from ivr.console.hotspots import HotspotCounts, iso_week
from ivr.core import keys
from ivr.core.coarse_time import current_hour
from ivr.core.jobs import enqueue_reviewed_recordings_deletion
from ivr.core.redis_values import HashFields, as_text
from ivr.core.statuses import Triage
from ivr.core.tips import TipStore
from ivr.core.transactions import atomically

# The case's "hotspot" field for a tip finished without an area and a category: not counted.
NOT_COUNTED = "-"


class Finishing:
    def __init__(self, connection: redis.Redis, tips: TipStore, hotspots: HotspotCounts) -> None:
        self._redis = connection
        self._tips = tips
        self._hotspots = hotspots

    def finish(self, reference: str, outcome: Triage, fields: HashFields, parts_seen: int | None) -> None:
        """Mark the case finished, count it in the hotspots, take the tip off the queue and
        queue the deletion of any recording kept for review, at most once and all in one
        transaction: two handlers (or two tabs) finishing at once leave one outcome, a part
        given kept audio meanwhile is not missed, and a tipster's answer arriving meanwhile
        either lands first or reopens the finished tip. Landing first, it refuses the
        finish (NewsArrived) when the handler's page showed fewer parts (`parts_seen`; None:
        not checked) than the tip has: the tip is watched, so a part that lands before EXEC
        makes the check run again.

        A reopened tip is counted in the hotspots once: the case remembers the area and
        category it was counted under ("hotspot"), and a re-tag moves the count. A second
        pass-on is a supplement to the first: the case keeps the earlier one's hour
        ("supplement_to") for the package.
        """
        tip = self._tips.get(reference)
        if tip is None:
            raise UnknownTip("There is no tip with that reference.")
        week = iso_week(received_day(tip))
        case_key, tip_key = keys.case(reference), keys.tip(reference)

        def finish(pipe: redis.client.Pipeline) -> None:
            finished, area, category, stream, entry, counted, passed_hour, reopened = pipe.hmget(
                case_key, "finished", "area", "category", "stream", "entry", "hotspot", "passed_hour", "reopened")
            if finished is not None:
                raise Finished("This tip has already been passed on or closed.")
            if parts_seen is not None and int(pipe.hget(tip_key, "parts") or 0) > parts_seen:
                raise NewsArrived("pass it on" if outcome == PASSED_ON else "close it")
            kept_audio = self._tips.has_kept_audio(reference, pipe=pipe)
            tag = f"{as_text(area)}|{as_text(category)}" if area and category else NOT_COUNTED
            # Counted before cases remembered their count (reopened, no "hotspot"): left as it was.
            previous = as_text(counted) if counted else (tag if reopened else None)
            # When it was finished (the retention clock starts here: `ivr.core.retention`).
            mapping: HashFields = {**fields, "finished": outcome, "hotspot": tag,
                                   "finished_hour": current_hour(self._tips.clock())}
            if outcome == PASSED_ON and passed_hour:  # passed on before: this one supplements it
                mapping["supplement_to"] = passed_hour
            pipe.multi()
            pipe.hset(case_key, mapping=mapping)
            if outcome != PASSED_ON:
                pipe.hdel(case_key, "supplement_to")
            pipe.hdel(case_key, "news")
            self._tips.set_triage(reference, outcome, pipe=pipe)
            if previous != tag:
                for change, counted_tag in ((-1, previous), (1, tag)):
                    if counted_tag and counted_tag != NOT_COUNTED:
                        counted_area, _, counted_category = counted_tag.partition("|")
                        self._hotspots.record(pipe, week, counted_area, counted_category, change)
            if kept_audio:  # reviewed: the provider's copy can go now
                enqueue_reviewed_recordings_deletion(self._redis, reference, pipeline=pipe)
            if stream and entry:
                self._tips.queue.finish(as_text(stream), as_text(entry), pipe=pipe)

        atomically(self._redis, [case_key, tip_key], finish)
