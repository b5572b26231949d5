"""What a text says, read the way people type: any case, stray spaces, control characters.

Keywords (HELP, STOP, START, SUPPORT, DONE, CLOSE) are whole messages; a returning tipster's
`REF <reference> PIN <pin> <more text>` is recognised with spaces, hyphens or colons
between the parts and inside the reference. Any digits are taken there, of any length:
whether they make a reference and a PIN is the PIN guard's to judge, so a malformed one
gets the same answer, after the same work, as a wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Words the carriers' opt-out rules name (UK and US practice); answered by the app itself.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# Ours alone: none is an opt-out or opt-in word at the provider (Twilio's defaults are STOP,
# STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, START, YES, UNSTOP, HELP, INFO), so the provider
# neither answers them nor keeps a list of who sent them. Never YES for a confirmation: it
# is a START word.
SUPPORT_WORDS = frozenset({"SUPPORT"})
DONE_WORDS = frozenset({"DONE"})
CLOSE_WORDS = frozenset({"CLOSE"})

# Possessive: each part keeps what it took, so no body, however long, makes matching backtrack.
_RETURNING = re.compile(r"^\s*+REF[\s:#.-]*+([\d\s-]*+)PIN[\s:#.-]*+(\d*+)(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Returning:
    """`REF <reference> PIN <pin> text`: more for an existing tip."""

    reference: str
    pin: str
    text: str


def clean(body: str) -> str:
    """The body without control characters (newlines and tabs kept) and outer spaces."""
    return "".join(ch for ch in body if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def keyword(body: str) -> str | None:
    """The keyword a whole message is (STOP, START, HELP, SUPPORT, DONE, CLOSE), or None."""
    word = "".join(body.split()).upper()
    for name, words in (("STOP", STOP_WORDS), ("START", START_WORDS), ("HELP", HELP_WORDS),
                        ("SUPPORT", SUPPORT_WORDS), ("DONE", DONE_WORDS), ("CLOSE", CLOSE_WORDS)):
        if word in words:
            return name
    return None


def returning(body: str) -> Returning | None:
    """The reference, PIN and text of a `REF ... PIN ...` message (unchecked), or None."""
    match = _RETURNING.match(body)
    if not match:
        return None
    return Returning(reference=re.sub(r"\D", "", match.group(1)), pin=match.group(2), text=match.group(3).strip())
