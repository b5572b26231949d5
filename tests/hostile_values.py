"""Hypothesis strategies for what an attacker (or a confused provider) could send us.

Each strategy is named for what it produces. They are shared by the webhook fuzz tests
(tests/test_fuzz_webhooks.py) and the console's (tests/test_fuzz_console.py), so both
meet the same hostile values: empty and huge strings, every Unicode category (control
characters and NULs included), odd numbers, malformed sids and repeated form keys.

Huge values are built by repeating a short drawn text, not drawn whole: hypothesis pays
per drawn character, and the sizes that matter are around the edges (Twilio's 1,600
character body, our 64 KiB request limit), not in the characters themselves.
"""

from __future__ import annotations

from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from ivr.core.references import damm_check_digit

# Characters a form value can carry that a person does not type: NUL and the other C0/C1
# controls, bidi overrides, zero-width and byte-order marks, line and paragraph separators.
CONTROL_CHARACTERS = "\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\x9f\u200b\u200e\u202e\u2028\u2029\ufeff"

control_character_texts = st.text(
    st.sampled_from(CONTROL_CHARACTERS) | st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=12)

# Any Unicode a form can carry (UTF-8 has no lone surrogates, so neither does this).
unicode_texts = st.text(st.characters(codec="utf-8"), max_size=40)

# A NUL somewhere in otherwise ordinary text: the one control character C code stops at.
nul_laced_texts = st.builds(lambda text, at: text[:at] + "\x00" + text[at:], st.text(max_size=12), st.integers(0, 12))

blank_texts = st.sampled_from(["", " ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "   \x00  "])


# Around Twilio's 1,600-character body, a few kilobytes, and past our 64 KiB request limit
# (rarely: a request over it is refused before anything reads it, so it tests little).
HUGE_SIZES = st.sampled_from([1_601, 4_096, 9_999, 70_000]) | st.integers(1_500, 5_000)

# A long value: a short drawn text repeated to a drawn size.
huge_texts = st.builds(lambda unit, size: (unit * (size // len(unit) + 1))[:size],
                       st.text(st.characters(codec="utf-8"), min_size=1, max_size=6), HUGE_SIZES)


# What int() and float() make of text: signs, spaces, exponents, underscores, non-ASCII digits.
odd_number_texts = st.one_of(
    st.sampled_from(["0", "-1", "-0", "+5", " 7 ", "1e309", "1e9", "9" * 30, "NaN", "inf", "-inf", "0x10",
                     "1_000", "\u0661\u0662\u0663", "\u00b2", "\uff19", "3.5", ".", "", "١e3", "1" * 5000]),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)



def sids(prefix: str) -> st.SearchStrategy[str]:
    """Provider sids of one kind: two letters and 32 hex digits. (Built from integers: from_regex
    costs a hundred times more per draw.)"""
    return st.integers(0, 2**128 - 1).map(lambda number: f"{prefix}{number:032x}")


# Provider sids are two letters and 32 hex digits; these are that shape, or nearly.
sid_shaped_texts = st.one_of(
    st.one_of(*(sids(prefix) for prefix in ("RE", "CA", "SM", "MM", "AC", "XX", "re"))),
    st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(["RE", "CA", "SM"]),
              st.text(st.sampled_from("0123456789abcdefABCDEFghz"), max_size=80)),
    st.sampled_from(["RE", "RE../../Accounts", "RE%2F..", "RE\x00" + "0" * 32, "RE" + "g" * 32]),
)

hostile_texts = st.one_of(
    blank_texts, unicode_texts, control_character_texts, huge_texts, odd_number_texts, sid_shaped_texts,
    unicode_texts, nul_laced_texts, odd_number_texts,
    st.sampled_from(["<Response><Hangup/></Response>", "]]><!--", "&amp;&#0;", "%00", "%s%n", "{0}{language}",
                     "' OR 1=1 --", "${jndi:x}", "../../etc/passwd", "\\", "\"", "REF", "PIN", "DONE", "STOP"]),
)

# Form keys Twilio never sends: empty, control characters, look-alikes of real keys.
hostile_keys = st.one_of(
    st.sampled_from(["", " ", "Digits ", "digits", "DIGITS", "Digits\x00", "t", "csrf_token ", "From[]",
                     "__proto__", "RecordingSid\u200b"]),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
)

# What a caller can press, as Twilio reports it, and what it never reports.
dtmf_digits = st.one_of(
    st.sampled_from(["1", "2", "3", "9", "0", "*", "#", "hangup", "timeout", "", "11", "1#", "w", "A", "D"]),
    st.text(st.sampled_from("0123456789*#wW"), max_size=40),
    hostile_texts,
)


def valid_references() -> st.SearchStrategy[str]:
    """References our own Damm check accepts (10 drawn digits and the check digit)."""
    return (st.integers(0, 10**10 - 1).map(lambda number: f"{number:010d}")
            .map(lambda body: body + damm_check_digit(body)))


def digit_strings(*lengths: int) -> st.SearchStrategy[str]:
    """Strings of decimal digits of one of `lengths` (PINs, number tails)."""
    return st.one_of(*(st.integers(0, 10**length - 1).map(lambda number, length=length: f"{number:0{length}d}")
                       for length in lengths))


# What a hostile sender does to a field: leaves it out, changes its value, repeats the key
# with other values, or sends it once more alongside the genuine one.
FIELD_CHANGES = ("drop", "replace", "repeat", "add")


def _changed_form(genuine: dict[str, str], changes: list[tuple[str, str, list[str]]]) -> MultiDict:
    form = MultiDict(genuine)
    for name, change, values in changes:
        if change == "drop":
            form.poplist(name)
        elif change == "replace":
            form.setlist(name, values[:1])
        elif change == "repeat":
            form.setlist(name, values)
        else:
            for value in values:
                form.add(name, value)
    return form


def hostile_forms(genuine: dict[str, str | st.SearchStrategy[str]]) -> st.SearchStrategy[MultiDict]:
    """A genuine form with up to four hostile changes: a field dropped, given hostile values,
    repeated, or a stray hostile key added.

    `genuine` maps each field the real sender sends to its value, or to a strategy for
    its real values where they vary (a fixed value costs no draw). A MultiDict, so a repeated key is sent (and signed)
    as the provider would send it: `Digits=1&Digits=2`. A few changes per case rather than
    every field at once, so a failure shrinks to the one field that causes it.
    """
    names = st.sampled_from(list(genuine)) if genuine else st.nothing()  # a button's form has none
    changes = st.lists(st.tuples(names | hostile_keys, st.sampled_from(FIELD_CHANGES),
                                 st.lists(hostile_texts, min_size=1, max_size=3)), max_size=4)
    fixed = {name: value for name, value in genuine.items() if isinstance(value, str)}
    varying = st.fixed_dictionaries({name: value for name, value in genuine.items() if not isinstance(value, str)})
    return st.builds(lambda drawn, changed: _changed_form({**fixed, **drawn}, changed), varying, changes)
