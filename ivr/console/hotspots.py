"""Tips by area and category per ISO week, for supervisors, with small counts hidden.

A count of 1 or 2 in one area, category and week could point at a single tipster, so it is
shown as "<3" (a 0 points at nobody and is shown). A total is shown only when every cell in
it is shown: otherwise subtracting the shown cells from it would recover a hidden one. The
table keeps no hidden value at all, so no template or chart can leak one by mistake.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape

import redis
from redis.client import Pipeline

from ivr.core import keys

SMALLEST_SHOWN = 3
HIDDEN_CELL = "<3"
HIDDEN_TOTAL = "–"
_WEEK = re.compile(r"\d{4}-W(?:0[1-9]|[1-4]\d|5[0-3])")
# Areas and categories are ids from config (never free text), and "|" joins them in a field.
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")


def iso_week(day: date) -> str:
    """The ISO week `day` falls in, e.g. '2026-W48' (ISO years start on a Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(week: str) -> date:
    """The Monday of an ISO week such as '2026-W48'; ValueError for anything else."""
    if not _WEEK.fullmatch(week):
        raise ValueError(f"week: expected an ISO week such as '2026-W48', got {week!r}")
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)  # refuses W53 in a 52-week year


def weeks_between(first: date, last: date) -> list[str]:
    """Every ISO week from the one holding `first` to the one holding `last`, in order."""
    if first > last:
        raise ValueError(f"first ({first}) must be on or before last ({last})")
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(iso_week(monday))
        monday += timedelta(days=7)
    return weeks


# HINCRBY, then drop a field that reached 0 (or below, after an un-record of something never
# recorded): one script, so it can be queued inside a caller's MULTI like any command.
_CHANGE_COUNT = """
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if count <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return count
"""


class HotspotCounts:
    """How many tips were tagged with each area and category, per ISO week, in Redis."""

    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection

    def record(self, pipe_or_client: redis.Redis | Pipeline, week: str, area: str, category: str,
               change: int = 1) -> None:
        """Count a tagged tip (change=-1 takes a re-tagged one back); queued when given a pipeline.

        A field that reaches zero is deleted; one that would go below zero (an un-record of
        something never recorded) is deleted too rather than left negative.
        """
        week_monday(week)  # refuses a malformed week
        for name, tag in (("area", area), ("category", category)):
            if not _TAG.fullmatch(tag):
                raise ValueError(f"{name}: expected an id from config (letters, digits, _ or -), got {tag!r}")
        if change == 0:
            raise ValueError("change: please give a non-zero number (1 to record, -1 to un-record)")
        pipe_or_client.eval(_CHANGE_COUNT, 1, keys.console_hotspots(week), f"{area}|{category}", change)

    def counts(self, weeks: list[str]) -> dict[tuple[str, str], dict[str, int]]:
        """{(area, category): {week: count}} for the given weeks; only counts above zero."""
        for week in weeks:
            week_monday(week)  # refuses a malformed week
        with self._redis.pipeline(transaction=False) as pipe:
            for week in weeks:
                pipe.hgetall(keys.console_hotspots(week))
            per_week = pipe.execute()
        result: dict[tuple[str, str], dict[str, int]] = {}
        for week, fields in zip(weeks, per_week, strict=True):
            for field, count in fields.items():
                field = field.decode() if isinstance(field, bytes) else field
                area, _, category = field.partition("|")
                if int(count) > 0:
                    result.setdefault((area, category), {})[week] = int(count)
        return result


@dataclass(frozen=True)
class Cell:
    """What a supervisor sees in one place of the table; a hidden value is not kept at all."""

    value: int | None
    shown: str

    @property
    def suppressed(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Row:
    """One area and category: a cell per week of the table, and their total."""

    area: str
    category: str
    cells: tuple[Cell, ...]
    total: Cell


@dataclass(frozen=True)
class HotspotTable:
    """What a supervisor may see for a period: the rows, each week's total and the grand total."""

    weeks: tuple[str, ...]
    rows: tuple[Row, ...]
    week_totals: tuple[Cell, ...]
    grand_total: Cell


def count_cell(count: int) -> Cell:
    """A count as shown: 1 and 2 become '<3'."""
    if count < 0:
        raise ValueError(f"count: a tip count cannot be negative, got {count}")
    if 0 < count < SMALLEST_SHOWN:
        return Cell(None, HIDDEN_CELL)
    return Cell(count, str(count))


def total_cell(cells: list[Cell]) -> Cell:
    """The sum of `cells`, or '–' when any of them is hidden (it could be recovered by subtraction)."""
    if any(cell.suppressed for cell in cells):
        return Cell(None, HIDDEN_TOTAL)
    total = sum(cell.value or 0 for cell in cells)
    return Cell(total, str(total))


def build_table(counts: dict[tuple[str, str], dict[str, int]], weeks: list[str],
                areas_order: list[str] | None = None, categories_order: list[str] | None = None) -> HotspotTable:
    """The table behind the chart: one row per area and category tagged in `weeks`, in config order."""
    def position(order: list[str] | None, name: str) -> tuple[int, str]:
        """Config order first; names config does not list after them, alphabetically."""
        order = order or []
        return (order.index(name) if name in order else len(order), name)

    tagged = [pair for pair, by_week in counts.items() if any(by_week.get(week, 0) > 0 for week in weeks)]
    tagged.sort(key=lambda pair: (position(areas_order, pair[0]), position(categories_order, pair[1])))
    rows = []
    for area, category in tagged:
        cells = [count_cell(counts[(area, category)].get(week, 0)) for week in weeks]
        rows.append(Row(area, category, tuple(cells), total_cell(cells)))
    week_totals = tuple(total_cell([row.cells[column] for row in rows]) for column in range(len(weeks)))
    grand_total = total_cell([cell for row in rows for cell in row.cells])
    return HotspotTable(tuple(weeks), tuple(rows), week_totals, grand_total)


# -- the chart ----------------------------------------------------------------------------
_BLUES = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
_FONT = 'font-family="system-ui, sans-serif"'
_CELL_WIDTH, _CELL_HEIGHT, _GAP, _TOP = 46, 26, 10, 78
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text or attribute content from anywhere (labels included), safe inside the SVG."""
    return escape(_NOT_XML.sub("", text), {'"': "&quot;", "'": "&apos;"})


def _label(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shade(value: int, largest: int) -> str:
    """The fill for a shown count; the scale is set by shown counts only, never by hidden ones."""
    if value == 0:
        return "#ffffff"
    return _BLUES[max(1, math.ceil(value / largest * (len(_BLUES) - 1)))]


def _box(x: float, y: float, cell: Cell, fill: str, bold: bool = False) -> str:
    if cell.suppressed:
        fill = "url(#hidden)" if cell.shown == HIDDEN_CELL else "#f0f0f0"
    ink = "#ffffff" if fill in _BLUES[4:] else ("#6b6b6b" if cell.suppressed or cell.value == 0 else "#1a1a1a")
    weight = ' font-weight="bold"' if bold else ""
    return (f'<rect x="{x}" y="{y}" width="{_CELL_WIDTH - 2}" height="{_CELL_HEIGHT - 2}" rx="3" fill="{fill}" '
            f'stroke="#d0d0d0"/><text x="{x + (_CELL_WIDTH - 2) / 2}" y="{y + _CELL_HEIGHT / 2 + 3}" '
            f'text-anchor="middle" font-size="12" fill="{ink}"{weight}>{_xml(cell.shown)}</text>')


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="hotspots-title" {_FONT}>'
            f'<title id="hotspots-title">{_xml(title)}</title>'
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>")


def render_svg(table: HotspotTable, area_labels: dict[str, str], category_labels: dict[str, str]) -> str:
    """A heat grid of the table: one row per area and category, one column per week, totals at the edges."""
    if not table.rows:
        message = "No tips tagged in this period"
        return _svg(320, 48, message, [f'<text x="160" y="29" text-anchor="middle" font-size="14" '
                                       f'fill="#444444">{message}</text>'])
    labels = [_label(f"{area_labels.get(row.area, row.area)} · {category_labels.get(row.category, row.category)}")
              for row in table.rows]
    label_width = max(140, 7 * max(len(label) for label in labels) + 20)
    totals_x = label_width + len(table.weeks) * _CELL_WIDTH + _GAP
    totals_y = _TOP + len(table.rows) * _CELL_HEIGHT + _GAP
    width = max(totals_x + _CELL_WIDTH + 10, 560)
    height = totals_y + _CELL_HEIGHT + 96
    largest = max([cell.value or 0 for row in table.rows for cell in row.cells] + [1])
    title = f"Tips tagged by area and category, {table.weeks[0]} to {table.weeks[-1]}"
    body = [
        '<defs><pattern id="hidden" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f7f7f7"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#cfcfcf" stroke-width="2"/></pattern></defs>',
        f'<text x="10" y="24" font-size="16" font-weight="bold" fill="#1a1a1a">{_xml(title)}</text>',
    ]
    previous_year = ""
    for column, week in enumerate(table.weeks):
        x = label_width + column * _CELL_WIDTH + (_CELL_WIDTH - 2) / 2
        year, number = week.split("-")
        if year != previous_year:
            body.append(f'<text x="{x}" y="{_TOP - 24}" text-anchor="middle" font-size="10" '
                        f'fill="#6b6b6b">{year}</text>')
            previous_year = year
        body.append(f'<text x="{x}" y="{_TOP - 8}" text-anchor="middle" font-size="11" fill="#1a1a1a">{number}</text>')
    body.append(f'<text x="{totals_x + (_CELL_WIDTH - 2) / 2}" y="{_TOP - 8}" text-anchor="middle" '
                f'font-size="11" font-weight="bold" fill="#1a1a1a">Total</text>')
    for index, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        y = _TOP + index * _CELL_HEIGHT
        body.append(f'<text x="{label_width - 10}" y="{y + _CELL_HEIGHT / 2 + 3}" text-anchor="end" '
                    f'font-size="12" fill="#1a1a1a">{_xml(label)}</text>')
        for column, cell in enumerate(row.cells):
            body.append(_box(label_width + column * _CELL_WIDTH, y, cell, _shade(cell.value or 0, largest)))
        body.append(_box(totals_x, y, row.total, "#f0f0f0", bold=True))
    body.append(f'<text x="{label_width - 10}" y="{totals_y + _CELL_HEIGHT / 2 + 3}" text-anchor="end" '
                f'font-size="12" font-weight="bold" fill="#1a1a1a">Total</text>')
    for column, cell in enumerate(table.week_totals):
        body.append(_box(label_width + column * _CELL_WIDTH, totals_y, cell, "#f0f0f0", bold=True))
    body.append(_box(totals_x, totals_y, table.grand_total, "#f0f0f0", bold=True))
    body += _legend(totals_y + _CELL_HEIGHT + 24, largest)
    return _svg(width, height, title, body)


def _legend(y: float, largest: int) -> list[str]:
    """Swatches for the scale, then what '<3' and '–' mean."""
    parts = [f'<text x="10" y="{y + 12}" font-size="11" fill="#1a1a1a">Fewer</text>']
    for step, colour in enumerate(("#ffffff",) + _BLUES[1:]):
        parts.append(f'<rect x="{50 + step * 18}" y="{y}" width="16" height="16" fill="{colour}" stroke="#d0d0d0"/>')
    more = f"More (up to {largest})" if largest >= SMALLEST_SHOWN else "More"
    parts.append(f'<text x="{50 + 6 * 18 + 6}" y="{y + 12}" font-size="11" fill="#1a1a1a">{more}</text>')
    for line, (fill, shown, meaning) in enumerate((
            ("url(#hidden)", "&lt;3", "one or two tips, hidden so that no tipster is singled out"),
            ("#f0f0f0", HIDDEN_TOTAL, "a total that includes a hidden count, hidden so that it cannot be worked out"))):
        top = y + 26 + line * 24
        parts.append(f'<rect x="10" y="{top}" width="34" height="20" rx="3" fill="{fill}" stroke="#d0d0d0"/>'
                     f'<text x="27" y="{top + 14}" text-anchor="middle" font-size="11" fill="#6b6b6b">{shown}</text>'
                     f'<text x="52" y="{top + 14}" font-size="11" fill="#1a1a1a">{meaning}</text>')
    return parts
