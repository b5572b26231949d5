"""What is owed to tipsters, and for how long: the supervisors' deadlines page.

Four lists, oldest first: tips nobody has claimed yet (new ones, and returning ones
nobody took), questions the tipster has not answered, tips whose tipster has heard the
same status ("received", "being looked at") for longer than FEEDBACK_DEADLINE_DAYS
(feedback within three months is the norm for reporting channels), and tips still open
past the retention period: retention never deletes an open tip silently
(`ivr.core.retention`), so someone must pass it on or close it. Each row carries its
age from the coarse hour it began (so an age is "about": never more precise than the
hour), measured against the core's clock (`TipStore.clock`), which tests set.

`render_svg` draws the three lists' counts by age band, for scanning; no count here is
hidden as the hotspots' small counts are, since nothing in an age band points at a tipster
(the page lists the references anyway, for supervisors only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

import redis

from ivr.core import keys
from ivr.core.follow_up import FollowUp
from ivr.core.redis_values import as_text
from ivr.core.retention import Retention
from ivr.core.tips import ShreddedTip, TipStore

# Rows shown per list: the counts and the chart are of every tip, the table only the oldest.
MAX_ROWS = 200
# (upper bound in days, label): an age falls in the first band it is under.
AGE_BANDS: tuple[tuple[float, str], ...] = (
    (1, "under a day"), (7, "1 to 7 days"), (28, "1 to 4 weeks"), (91, "1 to 3 months"),
    (float("inf"), "over 3 months"))


@dataclass(frozen=True)
class Overdue:
    """One row: a tip, since when, and what is owed (a queue, an asker, a status)."""

    reference: str
    since: datetime
    age: timedelta
    note: str

    @property
    def age_text(self) -> str:
        return age_text(self.age)

    @property
    def days(self) -> int:
        return self.age.days


@dataclass(frozen=True)
class DeadlineList:
    """One of the page's lists: every tip counted, the oldest MAX_ROWS shown."""

    key: str
    title: str
    count: int
    rows: tuple[Overdue, ...]
    bands: tuple[int, ...]  # how many in each AGE_BANDS band

    @property
    def oldest(self) -> str:
        return self.rows[0].age_text if self.rows else "–"


@dataclass(frozen=True)
class DeadlinesReport:
    now: datetime
    feedback_days: int
    lists: tuple[DeadlineList, ...]


def age_text(age: timedelta) -> str:
    """'3 d 4 h', '40 d', '5 h', 'under 1 h': how long, to the hour."""
    hours = max(0, int(age.total_seconds() // 3600))
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    return f"{hours} h" if hours else "under 1 h"


def band(age: timedelta) -> int:
    days = age.total_seconds() / 86400
    return next(index for index, (upper, _) in enumerate(AGE_BANDS) if days < upper)


class Deadlines:
    def __init__(self, connection: redis.Redis, tips: TipStore, follow_up: FollowUp, feedback_days: int,
                 status_words: Mapping[str, str], retention: Retention | None = None) -> None:
        self._redis = connection
        self._tips = tips
        self._follow_up = follow_up
        self.feedback_days = feedback_days
        self._status_words = status_words  # the English words the tipster hears, per status code
        self._retention = retention

    def report(self) -> DeadlinesReport:
        now = self._tips.clock()
        cutoff_ms = int((now - timedelta(days=self.feedback_days)).timestamp() * 1000)
        unclaimed = self._tips.queue.unclaimed()
        streams = self._fields([reference for reference, _ in unclaimed[:MAX_ROWS]], keys.case, "stream")
        unanswered = self._follow_up.questions_waiting()
        unchanged = self._follow_up.status_unchanged_since(cutoff_ms)
        statuses = self._fields([reference for reference, _ in unchanged[:MAX_ROWS]], keys.tip, "tipster_status")
        return DeadlinesReport(now=now, feedback_days=self.feedback_days, lists=(
            _list("unclaimed", "Tips not yet claimed", now, unclaimed,
                  lambda reference: {keys.HANDLER_QUEUE_URGENT: "urgent",
                                     keys.HANDLER_QUEUE_RETURNING: "the tipster came back"}.get(
                                         streams.get(reference, ""), "new")),
            _list("unanswered", "Questions unanswered", now, unanswered, self._asker),
            _list("unchanged", f"Status unchanged for over {self.feedback_days} days", now, unchanged,
                  lambda reference: f"“{self._status_words.get(statuses.get(reference, ''), '?')}”"),
            *self._open_past(now),
        ))

    def _open_past(self, now: datetime) -> tuple[DeadlineList, ...]:
        """Open tips older than the retention period, by the hour they came in: kept until finished."""
        if self._retention is None:
            return ()
        days = self._retention.settings.days
        return (_list("retention", f"Open for over {days} days: kept until passed on or closed", now,
                      self._retention.open_past(now), lambda reference: "never deleted while open"),)

    def _asker(self, reference: str) -> str:
        try:
            question = self._follow_up.waiting_question(reference)
        except ShreddedTip:  # deleted under the retention rules, its question with it
            return "the tip was deleted"
        return f"asked by {question.asked_by}" if question else ""

    def _fields(self, references: list[str], key_of: Callable[[str], str], field: str) -> dict[str, str]:
        with self._redis.pipeline(transaction=False) as pipe:
            for reference in references:
                pipe.hget(key_of(reference), field)
            values = pipe.execute()
        return {reference: as_text(value) for reference, value in zip(references, values, strict=True) if value}


def _list(key: str, title: str, now: datetime, scored: list[tuple[str, int]],
          note: Callable[[str], str]) -> DeadlineList:
    """A list from (reference, since ms), oldest first."""
    bands = [0] * len(AGE_BANDS)
    rows = []
    for position, (reference, since_ms) in enumerate(scored):
        since = datetime.fromtimestamp(since_ms / 1000, tz=now.tzinfo)
        age = max(timedelta(0), now - since)
        bands[band(age)] += 1
        if position < MAX_ROWS:
            rows.append(Overdue(reference, since, age, note(reference)))
    return DeadlineList(key, title, len(scored), tuple(rows), tuple(bands))


# -- the picture ---------------------------------------------------------------------------
_COLOURS = {"unclaimed": "#1f5fbf", "unanswered": "#d9730d", "unchanged": "#b3261e", "retention": "#6b3fa0"}
_FONT = 'font-family="system-ui, sans-serif"'
_BAR, _GAP, _GROUP_GAP, _LEFT, _TOP, _PLOT_HEIGHT = 26, 4, 28, 40, 56, 150


def render_svg(report: DeadlinesReport) -> str:
    """Grouped bars: for each age band, one bar per list, its count above it; a legend below."""
    per_group = len(report.lists) * (_BAR + _GAP) - _GAP
    width = _LEFT + len(AGE_BANDS) * (per_group + _GROUP_GAP) + 10
    height = _TOP + _PLOT_HEIGHT + 44 + 22 * len(report.lists)
    largest = max([count for deadline in report.lists for count in deadline.bands] + [1])
    baseline = _TOP + _PLOT_HEIGHT
    title = "What is owed to tipsters, by age"
    body = [f'<text x="10" y="24" font-size="16" font-weight="bold" fill="#1a1a1a">{escape(title)}</text>',
            f'<line x1="{_LEFT - 6}" y1="{baseline}" x2="{width - 10}" y2="{baseline}" stroke="#9aa5b8"/>']
    for group, (_, label) in enumerate(AGE_BANDS):
        x0 = _LEFT + group * (per_group + _GROUP_GAP)
        for column, deadline in enumerate(report.lists):
            count = deadline.bands[group]
            height_px = round(count / largest * (_PLOT_HEIGHT - 20))
            x = x0 + column * (_BAR + _GAP)
            body.append(f'<rect x="{x}" y="{baseline - height_px}" width="{_BAR}" height="{height_px}" '
                        f'fill="{_COLOURS.get(deadline.key, "#5b6475")}"><title>{escape(deadline.title)}, '
                        f'{escape(label)}: {count}</title></rect>')
            body.append(f'<text x="{x + _BAR / 2}" y="{baseline - height_px - 4}" text-anchor="middle" '
                        f'font-size="11" fill="#1a1a1a">{count}</text>')
        body.append(f'<text x="{x0 + per_group / 2}" y="{baseline + 16}" text-anchor="middle" font-size="11" '
                    f'fill="#1a1a1a">{escape(label)}</text>')
    for line, deadline in enumerate(report.lists):
        y = baseline + 36 + line * 22
        body.append(f'<rect x="10" y="{y}" width="14" height="14" fill="{_COLOURS.get(deadline.key, "#5b6475")}"/>'
                    f'<text x="30" y="{y + 12}" font-size="12" fill="#1a1a1a">{escape(deadline.title)} '
                    f'({deadline.count})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="deadlines-title" {_FONT}>'
            f'<title id="deadlines-title">{escape(title)}</title>'
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>")
