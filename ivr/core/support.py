"""Where victims and witnesses can get support: `config/support.json`, one list per language.

Read to a caller who presses 0 at the topic menu, texted to anyone who texts SUPPORT.
Giving it stores nothing: no session, no counter, no tip. Checked when loaded, like the
prompt catalogues: every language of the menus has a list, and the SMS reply fits two
segments, so a gap shows at start-up rather than to someone who needs help at 3 a.m.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.core.prompts import CONFIG_DIR, CatalogueError, Menus
from ivr.core.segments import MAX_SEGMENTS, segment_count


@dataclass(frozen=True)
class Service:
    name: str
    number: str  # as people dial it, with spaces
    audience: str  # who it is for, one sentence

    @property
    def digits(self) -> str:
        return "".join(ch for ch in self.number if ch.isdigit())


@dataclass(frozen=True)
class SupportList:
    """One language's support services and the words around them."""

    language: str
    voice_intro: str
    voice_service: str  # "{name}: {number}. {for}"
    sms_intro: str
    services: tuple[Service, ...]

    def spoken(self, read_number: Callable[[str], str] = str) -> list[str]:
        """The sentences read to a caller, the intro first; `read_number` turns a number's
        digits into what the voice should say (one by one, with pauses)."""
        return [self.voice_intro, *(self.voice_service.format(name=s.name, number=read_number(s.digits),
                                                              **{"for": s.audience}) for s in self.services)]

    def texted(self) -> str:
        """The SMS reply: the intro, then each name and number."""
        return " ".join([self.sms_intro, *(f"{s.name} {s.number}." for s in self.services)])


@dataclass(frozen=True)
class Support:
    lists: dict[str, SupportList]
    fallback_language: str

    def for_language(self, language: str | None) -> SupportList:
        return self.lists.get(language or "", self.lists[self.fallback_language])


def load_support(menus: Menus, path: Path = CONFIG_DIR / "support.json") -> Support:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogueError(f"{path.name} cannot be read: {error}") from None
    lists = {}
    for language in menus.languages:
        entry = raw.get(language)
        if not isinstance(entry, dict) or not entry.get("services"):
            raise CatalogueError(f"config/support.json lacks the support services for {language!r}.")
        try:
            services: Sequence[dict[str, str]] = entry["services"]
            lists[language] = SupportList(
                language=language, voice_intro=entry["voice_intro"], voice_service=entry["voice_service"],
                sms_intro=entry["sms_intro"],
                services=tuple(Service(s["name"], s["number"], s["for"]) for s in services))
        except (KeyError, TypeError) as error:
            raise CatalogueError(f"config/support.json, {language!r}: missing {error}.") from None
        if segment_count(lists[language].texted()) > MAX_SEGMENTS:
            raise CatalogueError(f"config/support.json, {language!r}: the SMS reply needs more than "
                                 f"{MAX_SEGMENTS} text messages; shorten the intro or the names.")
    return Support(lists=lists, fallback_language=menus.fallback_language)
