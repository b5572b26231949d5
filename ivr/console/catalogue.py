"""The console's lists (areas, partners, close reasons), the words for each status code and
the words a question to a tipster must not say, read from `config/console.json`.

Handlers pick from these; the ids are what is stored and counted, the labels what is
shown and printed. Read and checked once at start-up, so a typo fails `make run`, not a
handler's pass-on at 3 a.m. The status lists must give words for exactly the codes in
`ivr.core.statuses`: a code with no words would show a handler a bare code, and words for a
code that does not exist are a typo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.core.prompts import CONFIG_DIR, CatalogueError, Menus
from ivr.core.statuses import Arrival, PartStatus, Triage

ID_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class ConsoleCatalogue:
    areas: Mapping[str, str]
    partners: Mapping[str, str]
    close_reasons: Mapping[str, str]
    categories: Mapping[str, str]
    pipeline_statuses: Mapping[str, str]  # a tip's (and a part's) status, as its facts show it
    part_statuses: Mapping[str, str]  # the line shown in place of a part's missing transcript
    triage: Mapping[str, str]
    arrivals: Mapping[str, str]
    # Per language: words that would tell whoever reads the tipster's phone what they
    # reported (`ivr.console.questions`); "word*" matches every word it starts.
    giveaway_words: Mapping[str, tuple[str, ...]]

# Each status list in console.json, and the codes it must give words for.
STATUS_LISTS: Mapping[str, type[StrEnum]] = MappingProxyType({
    "pipeline_statuses": PartStatus, "part_statuses": PartStatus, "triage": Triage, "arrivals": Arrival})


def load_console_catalogue(menus: Menus, path: Path = CONFIG_DIR / "console.json") -> ConsoleCatalogue:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogueError(f"{path}: cannot be read as JSON ({error}).") from None
    lists = {name: _pairs(path, raw, name) for name in ("areas", "partners", "close_reasons", *STATUS_LISTS)}
    for name, codes in STATUS_LISTS.items():
        missing, unknown = {str(c) for c in codes} - set(lists[name]), set(lists[name]) - {str(c) for c in codes}
        if missing or unknown:
            raise CatalogueError(f"{path}: '{name}' must give words for each status code"
                                 f"{f', missing {sorted(missing)}' if missing else ''}"
                                 f"{f', unknown {sorted(unknown)}' if unknown else ''}.")
    english = menus.catalogue("en")
    categories = {c.id: english.categories[c.id] for c in menus.categories}
    return ConsoleCatalogue(**{k: MappingProxyType(v) for k, v in lists.items()},
                            categories=MappingProxyType(categories),
                            giveaway_words=_giveaway_words(path, raw, menus.languages))


def _pairs(path: Path, raw: dict[str, Any], name: str) -> dict[str, str]:
    entries = raw.get(name)
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path}: '{name}' must be a non-empty list of [id, label] pairs.")
    pairs: dict[str, str] = {}
    for entry in entries:
        if (not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(x, str) and x for x in entry)
                or not set(entry[0]) <= ID_CHARACTERS):
            raise CatalogueError(f"{path}: '{name}' entry {entry!r} must be [id, label] with a lower-case id.")
        if entry[0] in pairs:
            raise CatalogueError(f"{path}: '{name}' lists {entry[0]!r} twice.")
        pairs[entry[0]] = entry[1]
    return pairs


# A "word*" stem shorter than this would match half the dictionary.
SHORTEST_STEM = 3


def _giveaway_words(path: Path, raw: dict[str, Any], languages: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    """Each menu language's list: a language without one would let any question through."""
    entries = raw.get("giveaway_words")
    if not isinstance(entries, dict):
        raise CatalogueError(f"{path}: 'giveaway_words' must map each language to a list of words.")
    lists = {language: words for language, words in entries.items() if not language.startswith("_")}
    missing, unknown = set(languages) - set(lists), set(lists) - set(languages)
    if missing or unknown:
        raise CatalogueError(f"{path}: 'giveaway_words' must list words for each language of config/menus.json"
                             f"{f', missing {sorted(missing)}' if missing else ''}"
                             f"{f', unknown {sorted(unknown)}' if unknown else ''}.")
    for language, words in lists.items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise CatalogueError(f"{path}: 'giveaway_words' for {language!r} must be a non-empty list of words.")
        for word in words:
            if "*" in word[:-1] or (word.endswith("*") and len(word.rstrip("*")) < SHORTEST_STEM):
                raise CatalogueError(f"{path}: giveaway word {word!r} ({language}): a * may only end a word, "
                                     f"after at least {SHORTEST_STEM} letters.")
    return MappingProxyType({language: tuple(words) for language, words in lists.items()})
