"""Prompt catalogues: complete, consistent, and refused at start-up when they are not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ivr.core.choices import Choices
from ivr.core.prompts import CONFIG_DIR, CatalogueError, load_menus


def copy_config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR / "prompts", target / "prompts")
    shutil.copy(CONFIG_DIR / "menus.json", target / "menus.json")
    return target


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_the_shipped_catalogues_load_with_english_and_two_more_languages() -> None:
    menus = load_menus()
    assert menus.languages[0] == "en" and len(menus.languages) >= 3
    assert [c.id for c in menus.categories] == ["drugs", "weapons", "child_exploitation", "fraud", "other"]
    assert {c.id for c in menus.categories if c.urgent} == {"weapons", "child_exploitation"}
    for language in menus.languages[1:]:
        assert "awaiting review" in menus.catalogue(language).review


def test_menu_digits_choose_only_what_is_offered() -> None:
    menus = load_menus()
    assert menus.language_for_digit("2") == "cy"
    assert menus.category_for_digit("5").id == "other"
    for odd in [None, "", "0", "6", "*", "#", "12", "a", "²"]:
        assert menus.category_for_digit(odd) is None


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["voice"].pop("goodbye"), "lacks voice prompts: goodbye"),
    (lambda d: d["voice"].update(reference="Numer: {reference}."), "placeholders"),
    (lambda d: d["categories"].pop("fraud"), "lacks category labels: fraud"),
    (lambda d: d.pop("say"), "lacks"),
    (lambda d: d.update(language="de"), "says it is 'de'"),
])
def test_a_broken_catalogue_is_refused_with_a_clear_message(tmp_path: Path, breakage, message: str) -> None:
    config = copy_config(tmp_path)
    edit(config / "prompts" / "pl.json", breakage)
    with pytest.raises(CatalogueError, match=message):
        load_menus(config)


def test_both_channels_read_one_set_of_menu_limits_and_fallbacks() -> None:
    menus = load_menus()
    assert [(s.plays, s.fallback) for s in menus.steps.values()] == [(3, "en"), (3, "other"), (3, None)]
    assert (menus.fallback_language, menus.fallback_category) == ("en", "other")
    assert menus.resolved(Choices(language="xx", reference="12345678903")) == Choices("en", "other", "12345678903")
    assert menus.resolved(Choices("cy", "weapons")) == Choices("cy", "weapons")
    assert menus.is_urgent(Choices(category="weapons")) and not menus.is_urgent(Choices(category="nope"))


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["steps"].pop("read_back"), "steps.read_back needs"),
    (lambda d: d["steps"]["language"].update(plays=0), "steps.language needs"),
    (lambda d: d["steps"]["language"].update(fallback="de"), "steps.language.fallback must be one of"),
    (lambda d: d["steps"]["category"].update(fallback="parking"), "steps.category.fallback must be one of"),
])
def test_broken_menu_steps_are_refused_with_a_clear_message(tmp_path: Path, breakage, message: str) -> None:
    config = copy_config(tmp_path)
    edit(config / "menus.json", breakage)
    with pytest.raises(CatalogueError, match=message):
        load_menus(config)


def test_a_missing_catalogue_or_bad_json_is_refused(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    (config / "prompts" / "cy.json").write_text("{not json")
    with pytest.raises(CatalogueError, match="not valid JSON"):
        load_menus(config)
    (config / "prompts" / "cy.json").unlink()
    with pytest.raises(CatalogueError, match="missing"):
        load_menus(config)


def test_every_sms_reply_fits_two_segments_at_its_longest() -> None:
    from ivr.core.prompts import WORST_CASE_FIELDS
    from ivr.core.segments import segment_count
    menus = load_menus()
    for language in menus.languages:
        for key in menus.catalogue(language).sms:
            assert segment_count(menus.sms_text(language, key, **WORST_CASE_FIELDS)) <= 2, (language, key)


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["sms"]["replies"].update(done="Dziękujemy! " * 12 + "{reference}"), "134 UCS-2"),
    (lambda d: d["sms"]["replies"].pop("stop"), "lacks sms prompts: stop"),
    (lambda d: d["sms"]["replies"].update(reference="Numer {reference}."), "placeholders"),
    (lambda d: d["sms"]["categories"].pop("fraud"), "lacks category labels: fraud"),
])
def test_a_broken_sms_catalogue_is_refused(tmp_path: Path, breakage, message: str) -> None:
    config = copy_config(tmp_path)
    edit(config / "prompts" / "pl.json", breakage)
    with pytest.raises(CatalogueError, match=message):
        load_menus(config)


@pytest.mark.parametrize("text, segments", [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
                                            ("€" * 80, 1), ("€" * 81, 2), ("ł" * 70, 1), ("ł" * 71, 2),
                                            ("ł" * 134, 2), ("ł" * 135, 3), ("😀" * 35, 1)])
def test_segments_are_counted_as_phones_send_them(text: str, segments: int) -> None:
    from ivr.core.segments import segment_count
    assert segment_count(text) == segments
