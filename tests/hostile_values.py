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

from ivr.references import damm_check_digit

# Characters a form value can carry that a person does not type: NUL and the other C0/C1
# controls, bidi overrides, zero-width and byte-order marks, line and paragraph separators.
CONTROL_CHARACTERS = "\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\x9f\u200b\u200e\u202e\u2028\u2029\ufeff"

control_character_texts = st.text(
    st.sampled_from(CONTROL_CHARACTERS) | st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=12)

# Any Unicode a form can carry (UTF-8 has no lone surrogates, so neither does this).
unicode_texts = st.text(st.characters(codec="utf-8"), max_size=40)

blank_texts = st.sampled_from(["", " ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "   \x00  "])


# Around Twilio's 1,600-character body and our 64 KiB request limit, and in between.
HUGE_SIZES = st.sampled_from([1_601, 4_096, 65_536, 70_000]) | st.integers(1_500, 40_000)

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

# Provider sids are two letters and 32 hex digits; these are that shape, or nearly.
sid_shaped_texts = st.one_of(
    st.from_regex(r"\A(RE|CA|SM|MM|AC|XX)[0-9a-f]{32}\Z"),
    st.from_regex(r"\A(RE|CA|SM)[0-9a-zA-Z]{0,80}\Z"),
    st.sampled_from(["RE", "RE../../Accounts", "RE%2F..", "RE\x00" + "0" * 32, "re" + "0" * 32, "RE" + "g" * 32]),
)

hostile_texts = st.one_of(
    blank_texts, unicode_texts, control_character_texts, huge_texts, odd_number_texts, sid_shaped_texts,
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
    return st.text(st.sampled_from("0123456789"), min_size=10, max_size=10).map(lambda body: body + damm_check_digit(body))


def field_values(genuine: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """One form field's values: absent, genuine, hostile, or the key repeated with several values."""
    return st.one_of(
        st.just([]),
        genuine.map(lambda value: [value]),
        hostile_texts.map(lambda value: [value]),
        st.lists(genuine | hostile_texts, min_size=2, max_size=4),
    )


def hostile_forms(genuine: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[MultiDict]:
    """A form with each genuine field absent, kept, hostile or repeated, plus stray hostile keys.

    `genuine` maps each field the real sender sends to a strategy for its real values
    (`st.just(...)` for a fixed one). A MultiDict, so a repeated key is sent (and
    signed) as the provider would send it: `Digits=1&Digits=2`. Built once per form
    shape: hypothesis validates a strategy when it is made, which costs more than a draw.
    """
    names = list(genuine)
    per_field = st.tuples(*(field_values(values) for values in genuine.values()))
    strays = st.lists(st.tuples(hostile_keys, hostile_texts), max_size=3)
    return st.builds(
        lambda values, stray_pairs: MultiDict(
            [(name, value) for name, field in zip(names, values) for value in field] + stray_pairs),
        per_field, strays)
