"""What the console knows about a case, and the ways a handler's action can be refused.

`Case` is the work on a tip (`casework.Casework` reads and changes it), `Package` what
leaves the console when a tip is passed on. Each refusal is its own class whose message
is fit to show the handler.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from ivr.console.flags import Flag
from ivr.core.statuses import Triage
from ivr.core.tips import Tip

# Codes, stored; the words a handler reads are the catalogue's (`ConsoleCatalogue.triage`).
NEW, IN_REVIEW, FOLLOW_UP, MALICIOUS, PASSED_ON, CLOSED = Triage
TRIAGE = tuple(Triage)
HANDLER_TRIAGE = (IN_REVIEW, FOLLOW_UP, MALICIOUS)  # set by hand; the others by what happens
FINISHED = (PASSED_ON, CLOSED)


class CaseworkError(Exception):
    """A handler's action cannot be done; the message says why, fit to show them."""


class UnknownTip(CaseworkError):
    pass


class NotYours(CaseworkError):
    def __init__(self, holder: str | None) -> None:
        super().__init__(f"{holder} holds this tip now; your draft is kept." if holder else
                         "Nobody holds this tip: claim it first (your draft is kept).")
        self.holder = holder


class Finished(CaseworkError):
    pass


class NotReady(CaseworkError):
    """A pass-on is missing something (summary, area, category)."""


class FlagsUnresolved(CaseworkError):
    def __init__(self, flags: list[Flag]) -> None:
        super().__init__(f"{len(flags)} thing(s) in the summary could identify the tipster: "
                         "edit them out, or confirm each one.")
        self.flags = flags


@dataclass(frozen=True)
class Note:
    author: str
    hour: str
    text: str


@dataclass(frozen=True)
class Case:
    reference: str
    summary: str
    area: str | None
    category: str | None
    partner: str | None
    close_reason: str | None
    duplicate_of: str | None
    duplicates: tuple[str, ...]
    notes: tuple[Note, ...]
    holder: str | None
    finished: Triage | None  # PASSED_ON or CLOSED once it is

    @property
    def summary_version(self) -> str:
        """A digest of the summary a pass-on form showed, so confirmations match that text."""
        return hashlib.sha256(self.summary.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Package:
    """What reaches the police or partner: this, and nothing else."""

    reference: str
    date: str
    category: str
    area: str
    summary: str

    def as_json(self) -> dict[str, str]:
        return {"reference": self.reference, "date": self.date, "category": self.category, "area": self.area,
                "summary": self.summary}


def received_day(tip: Tip) -> date:
    """The day a tip came in (its record keeps only the hour)."""
    return date.fromisoformat(tip.received_hour[:10])
