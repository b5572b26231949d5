"""Hotspot counts: kept in Redis per ISO week, shown with small counts hidden, drawn as a heat grid."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ElementTree
from datetime import date

import pytest
import redis

from ivr.console.hotspots import (
    HIDDEN_CELL,
    HIDDEN_TOTAL,
    Cell,
    HotspotCounts,
    HotspotTable,
    build_table,
    iso_week,
    render_svg,
    week_monday,
    weeks_between,
)
from ivr.core import keys

SVG = "{http://www.w3.org/2000/svg}"
AREAS = {"hackney": "Hackney", "tower_hamlets": "Tower Hamlets", "islington": "Islington"}
CATEGORIES = {"drugs": "Drugs", "weapons": "Weapons", "fraud": "Fraud"}


# -- ISO weeks ----------------------------------------------------------------------------

def test_a_day_falls_in_its_iso_week() -> None:
    assert iso_week(date(2026, 11, 25)) == "2026-W48"
    assert iso_week(date(2021, 1, 3)) == "2020-W53"  # a Sunday that belongs to last year's week
    assert iso_week(date(2024, 12, 30)) == "2025-W01"  # a Monday that belongs to next year's week


def test_weeks_across_a_year_boundary() -> None:
    assert weeks_between(date(2026, 12, 28), date(2027, 1, 10)) == ["2026-W53", "2027-W01"]
    assert weeks_between(date(2020, 12, 20), date(2021, 1, 12)) == ["2020-W51", "2020-W52", "2020-W53", "2021-W01",
                                                                   "2021-W02"]
    assert weeks_between(date(2025, 12, 22), date(2026, 1, 5)) == ["2025-W52", "2026-W01", "2026-W02"]


def test_weeks_between_is_inclusive_and_refuses_a_backwards_period() -> None:
    assert weeks_between(date(2026, 11, 25), date(2026, 11, 25)) == ["2026-W48"]
    assert len(weeks_between(date(2026, 1, 1), date(2026, 12, 31))) == 53
    with pytest.raises(ValueError, match="on or before"):
        weeks_between(date(2026, 12, 1), date(2026, 11, 1))


@pytest.mark.parametrize("week", ["2026-48", "2026-W00", "2026-W54", "2025-W53", "W48", "2026-W4", " 2026-W48"])
def test_a_malformed_week_is_refused(week: str) -> None:
    with pytest.raises(ValueError):
        week_monday(week)


# -- counts in Redis ----------------------------------------------------------------------

def test_recorded_tips_are_counted_per_week_area_and_category(redis_client: redis.Redis) -> None:
    hotspots = HotspotCounts(redis_client)
    for _ in range(3):
        hotspots.record(redis_client, "2026-W48", "hackney", "drugs")
    hotspots.record(redis_client, "2026-W49", "hackney", "drugs")
    hotspots.record(redis_client, "2026-W49", "islington", "weapons")
    hotspots.record(redis_client, "2026-W50", "islington", "weapons")  # outside the period asked for
    assert hotspots.counts(["2026-W48", "2026-W49"]) == {
        ("hackney", "drugs"): {"2026-W48": 3, "2026-W49": 1},
        ("islington", "weapons"): {"2026-W49": 1},
    }
    assert redis_client.hgetall(keys.console_hotspots("2026-W48")) == {b"hackney|drugs": b"3"}


def test_un_recording_to_zero_removes_the_field(redis_client: redis.Redis) -> None:
    hotspots = HotspotCounts(redis_client)
    hotspots.record(redis_client, "2026-W48", "hackney", "drugs")
    hotspots.record(redis_client, "2026-W48", "hackney", "weapons")
    hotspots.record(redis_client, "2026-W48", "hackney", "drugs", change=-1)
    assert redis_client.hgetall(keys.console_hotspots("2026-W48")) == {b"hackney|weapons": b"1"}
    hotspots.record(redis_client, "2026-W48", "hackney", "fraud", change=-1)  # never recorded
    hotspots.record(redis_client, "2026-W48", "hackney", "weapons", change=-1)
    assert redis_client.exists(keys.console_hotspots("2026-W48")) == 0
    assert hotspots.counts(["2026-W48"]) == {}


def test_a_re_tag_inside_the_callers_transaction(redis_client: redis.Redis) -> None:
    """Given a tip tagged hackney/drugs, when a handler re-tags it in one MULTI, the count moves."""
    hotspots = HotspotCounts(redis_client)
    hotspots.record(redis_client, "2026-W48", "hackney", "drugs")
    with redis_client.pipeline() as pipe:
        pipe.watch("tipline:tip:57200000004")
        pipe.multi()
        pipe.hset("tipline:tip:57200000004", "area", "islington")
        hotspots.record(pipe, "2026-W48", "hackney", "drugs", change=-1)
        hotspots.record(pipe, "2026-W48", "islington", "drugs")
        pipe.execute()
    assert hotspots.counts(["2026-W48"]) == {("islington", "drugs"): {"2026-W48": 1}}


@pytest.mark.parametrize("week, area, category, change", [
    ("2026-48", "hackney", "drugs", 1),
    ("2026-W48", "hack|ney", "drugs", 1),
    ("2026-W48", "hackney", "", 1),
    ("2026-W48", "Mrs Smith at no. 4", "drugs", 1),
    ("2026-W48", "hackney", "drugs", 0),
])
def test_record_refuses_what_is_not_a_week_an_id_or_a_change(
        redis_client: redis.Redis, week: str, area: str, category: str, change: int) -> None:
    with pytest.raises(ValueError):
        HotspotCounts(redis_client).record(redis_client, week, area, category, change)
    assert redis_client.keys("*") == []


# -- suppression --------------------------------------------------------------------------

WEEKS = ["2026-W47", "2026-W48", "2026-W49"]


def test_small_counts_are_hidden_and_zero_is_shown() -> None:
    table = build_table({("hackney", "drugs"): {"2026-W47": 1, "2026-W48": 2, "2026-W49": 3}}, WEEKS)
    (row,) = table.rows
    assert row.cells == (Cell(None, "<3"), Cell(None, "<3"), Cell(3, "3"))
    assert all(cell.suppressed for cell in row.cells[:2]) and not row.cells[2].suppressed
    zero = build_table({("hackney", "drugs"): {"2026-W48": 5}}, WEEKS).rows[0].cells[0]
    assert zero == Cell(0, "0") and not zero.suppressed


def test_a_total_is_shown_only_when_every_cell_in_it_is() -> None:
    counts = {
        ("hackney", "drugs"): {"2026-W47": 4, "2026-W48": 5, "2026-W49": 0},
        ("hackney", "weapons"): {"2026-W47": 3, "2026-W48": 1, "2026-W49": 6},
    }
    table = build_table(counts, WEEKS, ["hackney"], ["drugs", "weapons"])
    drugs, weapons = table.rows
    assert (drugs.category, weapons.category) == ("drugs", "weapons")
    assert drugs.total == Cell(9, "9")
    assert weapons.total == Cell(None, HIDDEN_TOTAL)
    assert [cell.shown for cell in table.week_totals] == ["7", HIDDEN_TOTAL, "6"]
    assert table.grand_total == Cell(None, HIDDEN_TOTAL)


def test_without_small_counts_every_total_is_shown() -> None:
    counts = {("hackney", "drugs"): {"2026-W47": 4, "2026-W48": 5},
              ("islington", "fraud"): {"2026-W48": 3, "2026-W49": 10}}
    table = build_table(counts, WEEKS)
    assert [row.total.shown for row in table.rows] == ["9", "13"]
    assert [cell.shown for cell in table.week_totals] == ["4", "8", "10"]
    assert table.grand_total == Cell(22, "22")


def test_rows_follow_config_order_then_unknown_names() -> None:
    counts = {(area, category): {"2026-W48": 3} for area in ("zeta", "islington", "hackney")
              for category in ("other", "drugs")}
    table = build_table(counts, WEEKS, ["islington", "hackney"], ["drugs", "other"])
    assert [(row.area, row.category) for row in table.rows] == [
        ("islington", "drugs"), ("islington", "other"), ("hackney", "drugs"), ("hackney", "other"),
        ("zeta", "drugs"), ("zeta", "other")]


def test_only_areas_tagged_in_the_period_have_rows() -> None:
    table = build_table({("hackney", "drugs"): {"2026-W40": 7}}, WEEKS)
    assert table.rows == () and table.grand_total == Cell(0, "0")


def shown_totals(table: HotspotTable) -> list[tuple[Cell, list[Cell]]]:
    """Every total on show with the cells it sums."""
    sums = [(row.total, list(row.cells)) for row in table.rows]
    sums += [(total, [row.cells[column] for row in table.rows]) for column, total in enumerate(table.week_totals)]
    sums.append((table.grand_total, [cell for row in table.rows for cell in row.cells]))
    return [(total, cells) for total, cells in sums if not total.suppressed]


def random_counts(generator: random.Random) -> tuple[dict[tuple[str, str], dict[str, int]], list[str]]:
    weeks = WEEKS[:generator.randint(1, 3)]
    counts = {}
    for area in AREAS:
        for category in CATEGORIES:
            if generator.random() < 0.7:
                counts[(area, category)] = {week: generator.choice([0, 0, 1, 2, 3, 4, 7, 20]) for week in weeks}
    return counts, weeks


@pytest.mark.parametrize("seed", range(300))
def test_no_hidden_count_can_be_recovered_by_subtraction(seed: int) -> None:
    counts, weeks = random_counts(random.Random(seed))
    table = build_table(counts, weeks)
    # Every shown total sums only shown cells, and adds up: so no shown total has a hidden cell in it.
    for total, cells in shown_totals(table):
        assert not any(cell.suppressed for cell in cells)
        assert total.value == sum(cell.value or 0 for cell in cells)
    # Every hidden cell lies in no shown total, so no equation on show contains it.
    for row in table.rows:
        for column, cell in enumerate(row.cells):
            if cell.suppressed:
                assert cell.value is None and cell.shown == HIDDEN_CELL
                assert row.total.suppressed and table.week_totals[column].suppressed
                assert table.grand_total.suppressed
    # And the table is blind to hidden values: 1s and 2s swapped, the same table.
    swapped = {pair: {week: {1: 2, 2: 1}.get(n, n) for week, n in by_week.items()} for pair, by_week in counts.items()}
    assert build_table(swapped, weeks) == table
    assert render_svg(build_table(swapped, weeks), AREAS, CATEGORIES) == render_svg(table, AREAS, CATEGORIES)


# -- the chart ----------------------------------------------------------------------------

def chart(counts: dict[tuple[str, str], dict[str, int]], weeks: list[str],
          areas: dict[str, str] = AREAS) -> tuple[str, ElementTree.Element]:
    svg = render_svg(build_table(counts, weeks), areas, CATEGORIES)
    return svg, ElementTree.fromstring(svg)


def texts(root: ElementTree.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def test_the_chart_is_a_scalable_heat_grid_with_hidden_cells_marked() -> None:
    counts = {("hackney", "drugs"): {"2026-W47": 1, "2026-W48": 12, "2026-W49": 0},
              ("islington", "fraud"): {"2026-W47": 4, "2026-W48": 3, "2026-W49": 5}}
    svg, root = chart(counts, WEEKS)
    assert root.tag == f"{SVG}svg"
    width, height = root.get("width"), root.get("height")
    assert root.get("viewBox") == f"0 0 {width} {height}"
    shown = texts(root)
    assert {"W47", "W48", "W49", "2026", "Hackney · Drugs", "Islington · Fraud", "12", "0", "<3"} <= set(shown)
    assert shown.count("<3") == 2  # the cell, and the legend
    assert "12" in shown and "–" in shown  # hackney's total hidden, islington's shown
    assert "Tips tagged by area and category, 2026-W47 to 2026-W49" in shown
    assert root.find(f"{SVG}title") is not None
    assert any(rect.get("fill") == "url(#hidden)" for rect in root.iter(f"{SVG}rect"))
    assert "&lt;3" in svg


def test_the_chart_shows_the_year_where_it_changes() -> None:
    weeks = weeks_between(date(2026, 12, 21), date(2027, 1, 10))
    _, root = chart({("hackney", "drugs"): {week: 5 for week in weeks}}, weeks)
    headings = ["2026", "W52", "W53", "2027", "W01"]
    assert [text for text in texts(root) if text in headings] == headings


def test_labels_are_escaped_and_nothing_external_or_active_is_in_the_chart() -> None:
    areas = {"hackney": "<script>alert('x')</script> & \"co\"\x00"}
    svg, root = chart({("hackney", "drugs"): {"2026-W48": 2}}, WEEKS, areas)
    assert "<script" not in svg.lower() and "&lt;script&gt;" in svg and "&amp;" in svg
    assert any(text.startswith("<script>alert('x')</script> & \"co\"") for text in texts(root))
    assert svg.replace('xmlns="http://www.w3.org/2000/svg"', "").lower().count("http") == 0
    assert "href" not in svg and "<style" not in svg and "@import" not in svg
    assert re.search(r"\son\w+\s*=", svg, re.IGNORECASE) is None  # no event handlers


def test_an_empty_period_says_so() -> None:
    svg, root = chart({}, WEEKS)
    assert texts(root) == ["No tips tagged in this period"]
    assert root.get("viewBox")
    assert chart({("hackney", "drugs"): {"2026-W40": 3}}, WEEKS)[0] == svg
