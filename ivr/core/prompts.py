"""Prompt catalogues and menus: data files under `config/`, validated when loaded.

`config/menus.json` gives the shape every language shares (which languages, which
categories, in menu order, and each menu step's plays and fallback: both channels read
them here, so the voice line and the SMS line cannot drift apart);
`config/prompts/<language>.json` gives each language's words.
A catalogue that lacks a prompt, a category label, or a placeholder the English one uses
is refused at start-up, not discovered by a caller at 3 a.m.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from config.settings import PROJECT_ROOT
from ivr.core.choices import Choices
from ivr.core.references import PIN_DIGITS, REFERENCE_RANDOM_DIGITS
from ivr.core.segments import MAX_SEGMENTS, is_gsm7, segment_count

CONFIG_DIR = PROJECT_ROOT / "config"
REFERENCE_LANGUAGE = "en"
# Keys of the topic menu that choose no topic: calling back with a reference, and hearing
# where to get support. Topics take 1 to 8, so they can never collide.
CALLING_BACK_KEY = "9"
SUPPORT_KEY = "0"
MAX_CATEGORIES = 8
Option = TypeVar("Option")


class CatalogueError(ValueError):
    """A menu or prompt file is missing, malformed or incomplete; the message says which."""


@dataclass(frozen=True)
class Category:
    id: str
    urgent: bool


@dataclass(frozen=True)
class MenuStep:
    """A menu's limits: offered `plays` times at most, then `fallback` is taken (None: none)."""

    name: str
    plays: int
    fallback: str | None = None


# The steps the code has a handler for; menus.json must give each its plays.
STEPS = ("language", "category", "read_back")


@dataclass(frozen=True)
class Catalogue:
    """One language's words for the voice line."""

    language: str
    name: str
    review: str
    say_language: str
    say_voice: str
    voice: Mapping[str, str]
    categories: Mapping[str, str]
    sms: Mapping[str, str]
    sms_categories: Mapping[str, str]

    def text(self, key: str, **fields: str) -> str:
        return self.voice[key].format(**fields)


@dataclass(frozen=True)
class Menus:
    """The languages and categories callers choose from, with every language's catalogue."""

    catalogues: Mapping[str, Catalogue]
    languages: tuple[str, ...]
    categories: tuple[Category, ...]
    steps: Mapping[str, MenuStep]

    def step(self, name: str) -> MenuStep:
        return self.steps[name]

    @property
    def fallback_language(self) -> str:
        return self.steps["language"].fallback or REFERENCE_LANGUAGE

    @property
    def fallback_category(self) -> str:
        return self.steps["category"].fallback or self.categories[-1].id

    def resolved(self, choices: Choices) -> Choices:
        """`choices` with each fact the menus do not offer (or none was made) replaced by
        its step's fallback: what a finished report is filed under."""
        return choices.but(
            language=choices.language if choices.language in self.languages else self.fallback_language,
            category=choices.category if self.category(choices.category) else self.fallback_category)

    def is_urgent(self, choices: Choices) -> bool:
        """Does the chosen topic go first in the handlers' queue? (Unknown or none: no.)"""
        category = self.category(choices.category)
        return bool(category and category.urgent)

    def catalogue(self, language: str | None) -> Catalogue:
        return self.catalogues.get(language or REFERENCE_LANGUAGE, self.catalogues[REFERENCE_LANGUAGE])

    def language_for_digit(self, digits: str | None) -> str | None:
        return _pick(self.languages, digits)

    def category_for_digit(self, digits: str | None) -> Category | None:
        return _pick(self.categories, digits)

    def category(self, category_id: str | None) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def sms_text(self, language: str | None, key: str, **fields: str) -> str:
        """An SMS reply in `language`, with the language and category menus filled in."""
        catalogue = self.catalogue(language)
        languages = ", ".join(f"{i} {self.catalogues[lang].name}" for i, lang in enumerate(self.languages, 1))
        menu = ", ".join(f"{i} {catalogue.sms_categories[c.id]}" for i, c in enumerate(self.categories, 1))
        return catalogue.sms[key].format(languages=languages, menu=menu, **fields)


def _pick(options: tuple[Option, ...], digits: str | None) -> Option | None:
    """The option a single keypress chose, or None for anything else (0, *, 12, letters)."""
    if digits is None or len(digits) != 1 or digits not in "123456789":
        return None
    index = int(digits) - 1
    return options[index] if index < len(options) else None


def load_menus(config_dir: Path = CONFIG_DIR) -> Menus:
    menus = _read_json(config_dir / "menus.json")
    languages = tuple(menus.get("languages", ()))
    categories = tuple(Category(id=c["id"], urgent=bool(c.get("urgent", False))) for c in menus.get("categories", ()))
    if REFERENCE_LANGUAGE not in languages or len(languages) > 9 or not categories:
        raise CatalogueError("menus.json needs 'en' among at most 9 languages, and at least one category.")
    if len(categories) > MAX_CATEGORIES:
        raise CatalogueError(f"menus.json offers {len(categories)} categories; at most {MAX_CATEGORIES} fit: the topic "
                             f"menu keeps {CALLING_BACK_KEY} for calling back with a reference and {SUPPORT_KEY} for "
                             "support. Merge two categories.")
    steps = _load_steps(menus.get("steps", {}), languages, categories)
    catalogues = {lang: _load_catalogue(config_dir / "prompts" / f"{lang}.json", lang) for lang in languages}
    reference = catalogues[REFERENCE_LANGUAGE]
    for catalogue in catalogues.values():
        _check_against_reference(catalogue, reference, categories)
    loaded = Menus(catalogues=MappingProxyType(catalogues), languages=languages, categories=categories,
                   steps=MappingProxyType(steps))
    for language in languages:
        _check_sms_lengths(loaded, language)
    return loaded


def _load_steps(raw: dict[str, Any], languages: tuple[str, ...],
                categories: tuple[Category, ...]) -> dict[str, MenuStep]:
    """Each menu step's plays and fallback, checked against the languages and categories offered."""
    options = {"language": set(languages), "category": {c.id for c in categories}}
    steps = {}
    for name in STEPS:
        entry = raw.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("plays"), int) or entry["plays"] < 1:
            raise CatalogueError(f"menus.json: steps.{name} needs \"plays\", a whole number of at least 1.")
        fallback = entry.get("fallback")
        if name in options and fallback not in options[name]:
            raise CatalogueError(f"menus.json: steps.{name}.fallback must be one of {sorted(options[name])}.")
        steps[name] = MenuStep(name=name, plays=entry["plays"], fallback=fallback)
    return steps


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    except FileNotFoundError:
        raise CatalogueError(f"{path} is missing.") from None
    except ValueError as error:
        raise CatalogueError(f"{path} is not valid JSON: {error}") from None


def _load_catalogue(path: Path, language: str) -> Catalogue:
    raw = _read_json(path)
    try:
        catalogue = Catalogue(
            language=raw["language"],
            name=raw["name"],
            review=raw["review"],
            say_language=raw["say"]["language"],
            say_voice=raw["say"]["voice"],
            voice=MappingProxyType(dict(raw["voice"])),
            categories=MappingProxyType(dict(raw["categories"])),
            sms=MappingProxyType(dict(raw["sms"]["replies"])),
            sms_categories=MappingProxyType(dict(raw["sms"]["categories"])),
        )
    except (KeyError, TypeError) as error:
        raise CatalogueError(f"{path} lacks {error}.") from None
    if catalogue.language != language:
        raise CatalogueError(f"{path} says it is {catalogue.language!r}, expected {language!r}.")
    return catalogue


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _check_against_reference(catalogue: Catalogue, reference: Catalogue, categories: tuple[Category, ...]) -> None:
    where = f"config/prompts/{catalogue.language}.json"
    for section in ("voice", "sms"):
        theirs, english_texts = getattr(catalogue, section), getattr(reference, section)
        missing = set(english_texts) - set(theirs)
        if missing:
            raise CatalogueError(f"{where} lacks {section} prompts: {', '.join(sorted(missing))}.")
        for key, english in english_texts.items():
            if _placeholders(theirs[key]) != _placeholders(english):
                raise CatalogueError(f"{where}: {section} prompt {key!r} must use the placeholders "
                                     f"{sorted(_placeholders(english))}.")
    for labels in (catalogue.categories, catalogue.sms_categories):
        unlabelled = {c.id for c in categories} - set(labels)
        if unlabelled:
            raise CatalogueError(f"{where} lacks category labels: {', '.join(sorted(unlabelled))}.")


# The longest values a reply's placeholders take: a reference and a PIN as minted today. A
# handler's question is checked against its frame when asked (FollowUp.fits_a_text): here
# only the frame.
WORST_CASE_FIELDS = {"reference": "8" * (REFERENCE_RANDOM_DIGITS + 1), "pin": "8" * PIN_DIGITS, "question": ""}


def _check_sms_lengths(menus: Menus, language: str) -> None:
    """Every SMS reply, filled at its longest, must fit in MAX_SEGMENTS segments."""
    for key in menus.catalogue(language).sms:
        text = menus.sms_text(language, key, **WORST_CASE_FIELDS)
        if segment_count(text) > MAX_SEGMENTS:
            limit = "306 GSM-7" if is_gsm7(text) else "134 UCS-2"
            raise CatalogueError(f"config/prompts/{language}.json: sms reply {key!r} needs {segment_count(text)} "
                                 f"segments ({len(text)} characters); at most {limit} characters fit in two.")
