"""What in a handler's summary could identify the tipster, flagged before it reaches the police.

The summary is what leaves the hotline (and, by disclosure, may reach the suspect), so the
console flags each phrase that could point back at the tipster and the handler edits or
confirms it. A missed flag can cost a tipster dearly and a needless one costs a click, so
where a phrase is ambiguous (a "he" in a sentence about the caller, a "ten past six") it is
flagged and the reason tells the handler what to look for.

Every pattern is linear in the length of the summary: runs are matched possessively and
judged in Python, so a pasted 50,000-character summary cannot stall the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

KINDS: tuple[str, ...] = ("phone", "email", "exact_time", "first_person", "gendered")

REASONS = {
    "phone": "A phone number leads straight to a person: if it is the tipster's, remove it; "
             "confirm it only if it belongs to the suspect (a deal line, say).",
    "email": "An email address leads straight to a person: if it is the tipster's, remove it; "
             "confirm it only if it belongs to the suspect.",
    "exact_time": "An exact time can be matched with phone records or cameras to find who was "
                  "there; write a coarse time such as \"in the evening\" instead.",
    "first_person": "Saying how the tipster knows (what they saw, where they live or work, who "
                    "they are to someone) narrows down who they are; write what happened without "
                    "saying who saw it.",
    "gendered": "This may say the tipster's gender or family; write \"they\" for the tipster and "
                "leave out descriptions of them.",
}

# -- phone numbers ------------------------------------------------------------------------
# A run of digits joined by the separators people write (spaces, hyphens, dashes, brackets,
# single dots), optionally led by + or (. Matched possessively, then judged: 7+ digits, not money,
# not a date or a range of years.
_PHONE_RUN = re.compile(r"(?:\+\s?)?\(?\d(?:(?:[\s\-\u2013]{1,2}|\.|\s?[()]\s?)?\d)*+")
_DATE = re.compile(r"\d{1,2}[.\-]\d{1,2}[.\-]\d{2,4}|\d{4}[.\-]\d{1,2}[.\-]\d{1,2}")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d\s?[\-\u2013]\s?(?:19|20)\d\d")
_CURRENCY = "£$€"


def _phones(summary: str) -> Iterator[tuple[str, int, int]]:
    for match in _PHONE_RUN.finditer(summary):
        text = match.group()
        before = summary[max(0, match.start() - 2):match.start()].strip()
        if sum(c.isdigit() for c in text) < 7 or before.endswith(tuple(_CURRENCY)):
            continue
        if _DATE.fullmatch(text) or _YEAR_RANGE.fullmatch(text):
            continue
        yield "phone", match.start(), match.end()


# -- emails -------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]++@[\w\-]++(?:\.[\w\-]++)++")

# -- exact times --------------------------------------------------------------------------
# A leading preposition is part of the flag, so replacing "at 22:15" with "in the evening"
# leaves a sentence that reads.
_LEAD = r"(?:(?:at|around|about|approx\.?|approximately|exactly|by|until|till|gone|just\s+(?:before|after))\s+)?"
_MERIDIEM = r"(?:[ap]\.m\.|[ap]\.?m\b)"  # "p.m." keeps its last dot, "pm." does not
_HOUR_WORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_HOUR = rf"(?:{_HOUR_WORD}|1[0-2]|0?[1-9]|1[3-9]|2[0-3])"
_CLOCK_TIMES = re.compile(
    rf"\b{_LEAD}(?:"
    rf"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s?{_MERIDIEM}|\s?(?:hrs|hours)\b)?"  # 22:15, 10:30 am
    rf"|(?:[01]?\d|2[0-3])\.[0-5]\d\s?{_MERIDIEM}"                         # 10.30pm
    rf"|(?:[01]\d|2[0-3])[0-5]\d\s?(?:hrs|hours)\b"                         # 2215 hrs
    rf"|(?:1[0-2]|0?[1-9]|{_HOUR_WORD})\s?{_MERIDIEM}"                      # 10pm, 3 a.m., ten pm
    rf"|(?:1[0-2]|0?[1-9]|{_HOUR_WORD})\s+(?:in\s+the\s+(?:morning|afternoon|evening)|at\s+night)\b"
    rf"|{_HOUR}\s+o['’]?\s?clock\b"                                        # 3 o'clock
    rf"|(?:half|(?:a\s+)?quarter)\s+(?:past|to)\s+{_HOUR}\b"               # half past 9
    rf"|(?:at|around|about|by|until|till|gone)\s+half\s+{_HOUR}\b"          # at half ten
    rf"|(?:at|around|about|gone|just\s+(?:before|after))\s+(?:midnight|noon|midday)\b"
    rf")(?![\w:])",
    re.IGNORECASE,
)
# A preposition and H.MM ("at 10.30") is a time; a bare "10.30" may be money.
_DOTTED_AFTER_PREPOSITION = re.compile(
    r"\b(?:at|around|about|approx\.?|approximately|by|until|till|gone)\s+(?:[01]?\d|2[0-3])\.[0-5]\d\b(?!\.\d)",
    re.IGNORECASE,
)
# "twenty to eleven", "ten past six": a time unless a counted noun follows ("ten to twelve men").
_MINUTES_PAST_HOUR = re.compile(
    rf"\b{_LEAD}(?:(?:five|ten|twenty|twenty[\s\-]five)(?:\s+minutes)?|[1-5]?\d\s+minutes)"
    rf"\s+(?:past|to)\s+{_HOUR}\b(?![\w:])",
    re.IGNORECASE,
)
_AFTER_A_TIME = frozenset(
    "am pm a.m. p.m. in on at that this last and but or when while as the a an he she they it we i "
    "tonight today yesterday tomorrow every most each someone somebody".split()
)
_NEXT_WORD = re.compile(r"\s+([\w.]+)")
_RANGE_BEFORE = re.compile(r"\b(?:aged|ages|age|between|from)\s+$", re.IGNORECASE)


def _times(summary: str) -> Iterator[tuple[str, int, int]]:
    for pattern in (_CLOCK_TIMES, _DOTTED_AFTER_PREPOSITION):
        for match in pattern.finditer(summary):
            yield "exact_time", match.start(), match.end()
    for match in _MINUTES_PAST_HOUR.finditer(summary):
        following = _NEXT_WORD.match(summary, match.end())
        if _RANGE_BEFORE.search(summary, max(0, match.start() - 12), match.start()):
            continue  # "aged ten to twelve": a range of numbers
        if following is None or following.group(1).lower() in _AFTER_A_TIME:
            yield "exact_time", match.start(), match.end()


# -- first person -------------------------------------------------------------------------
_ADVERB = r"(?:also|often|sometimes|regularly|personally|actually|just|once|still|never|always|usually|myself)"
_KNOWING_VERB = (
    r"(?:saw|see|seen|heard|hear|overheard|know|knew|live|lived|living|work|worked|working|was|were|am|are|"
    r"have|had|think|thought|noticed|notice|watched|watch|go|went|walk|walked|drive|drove|used\s+to|"
    r"recognised|recognized|believe|reckon|found|met|told|spoke|asked|rent|own|study)"
)
_MODIFIER = r"(?:own|old|best|new|former|late|elderly|next[\s\-]door|younger|older|little|big|dear|step)"
_FIRST_PERSON = re.compile(
    rf"(?<!\w)(?:"
    rf"(?:i|we)['’](?:m|ve|d|ll|re)\b"                                      # I'm, we've
    rf"|(?:i|we)\s+(?:{_ADVERB}\s+)?{_KNOWING_VERB}\b"                      # I saw, we often see
    rf"|(?:my|our)(?:\s+{_MODIFIER})?\s+[^\W\d_][\w'’\-]*+"                 # my neighbour, our flat
    rf"|of\s+(?:mine|ours)\b"                                               # a friend of mine
    rf"|(?:i|me|my|myself|we|us|our|ours|ourselves)\b(?![.)]\w)"
    rf")(?!\w)",
    re.IGNORECASE,
)
_THE_BEFORE = re.compile(r"\bthe\s+$", re.IGNORECASE)


def _first_person(summary: str) -> Iterator[tuple[str, int, int]]:
    for match in _FIRST_PERSON.finditer(summary):
        text = match.group()
        if text.lower() == "i" and summary[match.end():match.end() + 1] == ")":  # a list item "(i)"
            continue
        if text.lower() == "us" and _THE_BEFORE.search(summary, max(0, match.start() - 5), match.start()):
            continue  # "the US": the country, not the tipster
        yield "first_person", match.start(), match.end()


# -- gendered words for the tipster -------------------------------------------------------
_TIPSTER_NOUN = (r"(?:caller|tipster|informant|texter|source(?!\s+of\b)|reporter|person\s+reporting"
                 r"|person\s+who\s+(?:called|rang|phoned|texted))")
_TIPSTER = rf"\b(?:the|this|our)\s+{_TIPSTER_NOUN}\b|\b(?:caller|tipster|informant|texter)\b"
_GENDERED_NOUN = (
    r"(?:woman|man|lady|gentleman|girl|boy|mother|father|mum|mom|dad|wife|husband|widow|widower|"
    r"grandmother|grandfather|grandma|grandad|granddad|nan|son|daughter|sister|brother|aunt|uncle|"
    r"girlfriend|boyfriend|housewife|schoolgirl|schoolboy)s?"
)
_NUMBER_WORD = rf"(?:{_HOUR_WORD}|(?:twen|thir|for|fif|six|seven|eigh|nine)ty(?:[\s\-]{_HOUR_WORD})?)\b"
_DESCRIPTION = rf"(?:a|an)\s+(?:[\w\-]+\s+)?(?:ex|step)?[\-\s]?{_GENDERED_NOUN}\b(?:\s+of\s+(?:\d+|{_NUMBER_WORD}))?"
_TIPSTER_MENTION = re.compile(_TIPSTER, re.IGNORECASE)
_GENDERED_PRONOUN = re.compile(r"\b(?:he|she|him|her|his|hers|himself|herself)\b", re.IGNORECASE)
# Each pattern's group 1 is the flagged span: "female caller"; "a mother of two" in "the
# caller, a mother of two"; "the tipster's husband".
_GENDERED_DESCRIPTIONS = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    rf"\b((?:female|male|woman|man|lady|girl|boy|elderly\s+(?:woman|man|lady|gentleman))\s+{_TIPSTER_NOUN})\b",
    rf"(?:{_TIPSTER})\s*(?:,|\(|\bis\b|\bwas\b|,?\s*who\s+(?:is|was)\b)\s*({_DESCRIPTION})",
    rf"((?:{_TIPSTER})['’]s\s+(?:ex[\s\-])?(?:husband|wife|boyfriend|girlfriend|fianc[ée]e?)\b)",
))
# "The caller is scared. She lives next door.": a sentence that opens with a pronoun
# carries on from the one before.
_OPENING_PRONOUN = re.compile(r"\s*(?:he|she|his|her)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]*+(?:[.!?]++(?!\s|$)[^.!?\n]*+)*+[.!?]*+")


def _gendered(summary: str) -> Iterator[tuple[str, int, int]]:
    previous_mentions_tipster = False
    for sentence in _SENTENCE.finditer(summary):
        if not sentence.group().strip():
            continue
        mentions_tipster = _TIPSTER_MENTION.search(sentence.group()) is not None
        carries_on = previous_mentions_tipster and _OPENING_PRONOUN.match(sentence.group()) is not None
        previous_mentions_tipster = mentions_tipster
        if mentions_tipster or carries_on:
            for match in _GENDERED_PRONOUN.finditer(summary, sentence.start(), sentence.end()):
                yield "gendered", match.start(), match.end()
        if mentions_tipster:
            for pattern in _GENDERED_DESCRIPTIONS:
                for match in pattern.finditer(summary, sentence.start(), sentence.end()):
                    yield "gendered", match.start(1), match.end(1)


@dataclass(frozen=True)
class Flag:
    """One phrase the handler must edit or confirm before the summary is passed on."""

    kind: str
    text: str
    start: int
    end: int
    reason: str

    @property
    def fingerprint(self) -> str:
        """`kind:text`, lower case with whitespace collapsed: a confirmation is stored against it.

        It holds the flagged text itself (a phone number, say), so store it as the summary
        is stored, sealed with the tip, never as a plain Redis key.
        """
        return f"{self.kind}:{' '.join(self.text.lower().split())}"


def find_flags(summary: str) -> list[Flag]:
    """Every phrase in `summary` that could identify the tipster, by position; overlaps go to the longer."""
    found = [*_phones(summary), *_times(summary), *_first_person(summary), *_gendered(summary)]
    found += [("email", m.start(), m.end()) for m in _EMAIL.finditer(summary)]
    chosen: list[tuple[str, int, int]] = []
    taken = bytearray(len(summary))
    for kind, start, end in sorted(found, key=lambda f: (f[1] - f[2], f[1], KINDS.index(f[0]))):
        if not any(taken[start:end]):
            taken[start:end] = b"\x01" * (end - start)
            chosen.append((kind, start, end))
    return [Flag(kind, summary[start:end], start, end, _reason(kind, summary[start:end]))
            for kind, start, end in sorted(chosen, key=lambda f: f[1])]


def _reason(kind: str, text: str) -> str:
    if kind == "gendered" and _GENDERED_PRONOUN.fullmatch(text):
        return ("This sentence is about the tipster: if this word refers to them, write \"they\", "
                "since their gender narrows down who they are.")
    return REASONS[kind]
