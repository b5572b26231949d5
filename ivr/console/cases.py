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
    def __init__(self, flags: list[Flag], what: str = "the summary") -> None:
        super().__init__(f"{things(len(flags))} in {what} could identify the tipster: "
                         "edit them out, or confirm each one.")
        self.flags = flags


class NewsArrived(CaseworkError):
    """The tipster added to the tip after the handler's page was drawn: they must read it first."""

    def __init__(self, then: str) -> None:
        super().__init__(f"New information from the tipster arrived: read it, then {then}.")


def things(count: int) -> str:
    """'1 thing', '2 things': the count a handler reads."""
    return f"{count} thing" if count == 1 else f"{count} things"


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
    # The tipster came back after it was finished: the outcome it had, and how often.
    reopened_from: Triage | None = None
    reopened: int = 0
    news: bool = False  # the tipster came back and the holder has not opened the tip since
    passed_hour: str | None = None  # the coarse hour of its last pass-on
    supplement_to: str | None = None  # that pass-on supplemented the one of this coarse hour

    @property
    def earlier_pass_on(self) -> str | None:
        """While the tip is open again: the day of the pass-on its next one supplements."""
        return self.passed_hour[:10] if self.passed_hour and self.finished != Triage.PASSED_ON else None

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
    # The day of the earlier pass-on this one supplements (the tipster came back with more).
    supplement_to: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"reference": self.reference, "date": self.date, "category": self.category, "area": self.area,
                "summary": self.summary, "supplement_to": self.supplement_to}


def received_day(tip: Tip) -> date:
    """The day a tip came in (its record keeps only the hour)."""
    return date.fromisoformat(tip.received_hour[:10])
