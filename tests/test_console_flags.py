"""Summary flags: what could identify the tipster is flagged, ordinary crime detail is not."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.pool import Pool

import pytest

from ivr.console.flags import KINDS, Flag, find_flags

# A linear pass over 50,000 characters takes about 0.1 s here; a backtracking pattern takes
# minutes. Generous for a loaded machine, far below any regression.
SECONDS_PER_LONG_SUMMARY = 3.0

CLEAN_SUMMARY = ("A man in his 30s sells cannabis from a grey Golf outside the chip shop on Mare Street "
                 "in the evenings.")


def flagged(summary: str, kind: str) -> list[str]:
    """The texts of `summary`'s flags of one kind."""
    return [flag.text for flag in find_flags(summary) if flag.kind == kind]


def assert_well_formed(summary: str, flags: list[Flag]) -> None:
    assert [flag.start for flag in flags] == sorted(flag.start for flag in flags)
    for flag in flags:
        assert flag.kind in KINDS
        assert summary[flag.start:flag.end] == flag.text
        assert flag.reason.endswith(".") and flag.reason.count(". ") == 0  # one sentence
    for earlier, later in zip(flags, flags[1:], strict=False):
        assert earlier.end <= later.start


# -- phone numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("number", [
    "+44 7700 900123", "07700 900123", "07700-900-123", "(020) 7946 0018", "0800 555 111",
    "00 44 7700 900123", "447700900123", "+1 202 555 0143", "+44 (0)20 7946 0018", "07700900123",
    "020 7946 0018", "+447700900123", "0161 496 0000", "+1 (202) 555-0143", "020.7946.0018",
    "07700–900123", "07700\n900123",
])
def test_phone_numbers_are_flagged_whole(number: str) -> None:
    summary = f"The dealer's number is {number}, he says."
    assert flagged(summary, "phone") == [number]


@pytest.mark.parametrize("summary", [
    "It started in 2024.",
    "He lives at 12 Acacia Avenue, E1 6AN.",
    "He owes £1,500 to the supplier.",
    "He was paid £1500000 for it.",
    "Flat 3, 221 Baker Street.",
    "Seen on 2024-03-12 and again on 12.03.2024.",
    "Between 2019-2024 he ran the business, and 2019–2024 too.",
    "The car is a 2019 model, reg AB12 CDE.",
    "A 10.30 am meeting cost £2.50.",
])
def test_numbers_that_are_not_phone_numbers_are_not_flagged(summary: str) -> None:
    assert flagged(summary, "phone") == []


# -- emails -------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "john.smith@example.com", "j_smith+tips@mail.example.co.uk", "x-y.z123@sub-domain.example.org",
])
def test_email_addresses_are_flagged(address: str) -> None:
    assert flagged(f"Contact: {address}.", "email") == [address]


def test_an_at_sign_that_is_not_an_address_is_not_flagged() -> None:
    assert flagged("They meet @ the park and sell 2 @ £10.", "email") == []


# -- exact times --------------------------------------------------------------------------

@pytest.mark.parametrize("phrase", [
    "22:15", "10.30pm", "10:30 am", "10pm", "at 3 o'clock", "quarter past ten", "half past 9",
    "twenty to eleven", "at midnight", "at noon", "11 p.m.", "around 7am", "at 22:15", "2215 hrs",
    "at 10.30", "at half ten", "a quarter to six", "ten past six", "22:15:30", "about midnight",
    "7 o’clock", "10 minutes past 6", "just after midnight", "at 7 in the evening", "ten pm",
    "at 20:00", "1900 hours",
])
def test_exact_times_are_flagged(phrase: str) -> None:
    assert flagged(f"The van came {phrase}, then left.", "exact_time") == [phrase]


@pytest.mark.parametrize("summary", [
    "The van comes in the evening.",
    "It happened last week.",
    "He deals most nights.",
    "It started on 12 March.",
    "Ten to twelve men gather there.",
    "Children aged ten to twelve are used as runners.",
    "He sells bags at £10.50 each.",
    "He has 5 to 10 customers a day.",
    "The deals happen late at night, in the early hours.",
])
def test_coarse_times_and_dates_are_not_flagged(summary: str) -> None:
    assert flagged(summary, "exact_time") == []


def test_a_full_stop_after_a_time_is_not_part_of_it() -> None:
    assert flagged("Active 6pm-2am. Then quiet until 11 p.m. most days.",
                   "exact_time") == ["6pm", "2am", "until 11 p.m."]


def test_the_reason_for_a_time_suggests_a_coarse_one() -> None:
    (flag,) = find_flags("The deal was at 22:15.")
    assert flag.text == "at 22:15"
    assert "in the evening" in flag.reason


# -- first person -------------------------------------------------------------------------

@pytest.mark.parametrize("summary, phrase", [
    ("I saw him with a knife.", "I saw"),
    ("I heard shouting.", "I heard"),
    ("I know who did it.", "I know"),
    ("I live across the road.", "I live"),
    ("I work at the garage.", "I work"),
    ("I was there.", "I was"),
    ("I'm sure it was him.", "I'm"),
    ("I’ve seen the van.", "I’ve"),
    ("I'd recognise him.", "I'd"),
    ("Then I left.", "I"),
    ("i saw him too", "i saw"),
    ("He threatened me.", "me"),
    ("I did it myself.", "myself"),
    ("Then we left.", "we"),
    ("He sold to us.", "us"),
    ("Outside our school.", "our school"),
    ("My neighbour deals.", "My neighbour"),
    ("It was my brother.", "my brother"),
    ("It was my ex.", "my ex"),
    ("From my flat window.", "my flat"),
    ("My next-door neighbour saw it.", "My next-door neighbour"),
    ("A friend of mine was there.", "of mine"),
    ("'Call me,' he said.", "me"),
    ("I also saw the gun.", "I also saw"),
])
def test_first_person_phrases_are_flagged(summary: str, phrase: str) -> None:
    assert phrase in flagged(summary, "first_person")


@pytest.mark.parametrize("summary", [
    "Iris sells from the flat.",
    "He is mean to the runners.",
    "In all weather he is outside.",
    "Near the museum.",
    "He travels, i.e. he is rarely home.",
    "Two reasons: (i) the van, (ii) the cash.",
    "He imports from the US.",
    "Messages via the Wi-Fi.",
    "Item, myth, maybe, welcome, use, hours, menu, wept.",
])
def test_words_that_only_contain_first_person_letters_are_not_flagged(summary: str) -> None:
    assert flagged(summary, "first_person") == []


def test_my_and_its_noun_are_one_flag() -> None:
    flags = find_flags("My neighbour deals.")
    assert [(flag.kind, flag.text, flag.start, flag.end) for flag in flags] == [
        ("first_person", "My neighbour", 0, 12)]


# -- gendered words for the tipster -------------------------------------------------------

@pytest.mark.parametrize("summary, phrase", [
    ("The caller said he is scared.", "he"),
    ("The tipster says she saw the van.", "she"),
    ("The informant told us his car was damaged.", "his"),
    ("The source believes the gang knows her.", "her"),
    ("The texter hurt himself.", "himself"),
    ("The reporter said the bag was hers.", "hers"),
    ("The person reporting fears for herself.", "herself"),
    ("Caller says he knows him.", "him"),
    ("The female caller saw it.", "female caller"),
    ("The male tipster saw it.", "male tipster"),
    ("The caller, a mother of two, saw it.", "a mother of two"),
    ("The caller (a woman of 70) saw it.", "a woman of 70"),
    ("The caller, a father of twenty-one, saw it.", "a father of twenty-one"),
    ("The caller is a single mum.", "a single mum"),
    ("The caller is an ex-girlfriend of the suspect.", "an ex-girlfriend"),
    ("The tipster's husband works there.", "The tipster's husband"),
    ("The caller is afraid. She lives next door.", "She"),
    ("The caller is afraid. Her landlord is the dealer and he knows her.", "her"),
])
def test_gendered_words_for_the_tipster_are_flagged(summary: str, phrase: str) -> None:
    assert phrase in flagged(summary, "gendered")


@pytest.mark.parametrize("summary", [
    "The suspect said he sells from the van.",
    "His brother drives a grey Golf. She keeps the cash.",
    "The caller saw the van. The suspect said he sells from it.",
    "The source of the drugs is a man called Dave; he lives on the estate.",
    "A woman, a mother of two, is used as a courier.",
    CLEAN_SUMMARY,
])
def test_gendered_words_that_are_not_about_the_tipster_are_not_flagged(summary: str) -> None:
    assert flagged(summary, "gendered") == []


# -- the whole summary --------------------------------------------------------------------

def test_a_clean_realistic_summary_has_no_flags() -> None:
    assert find_flags(CLEAN_SUMMARY) == []


def test_a_summary_with_everything_is_flagged_in_order_without_overlaps() -> None:
    summary = ("The caller, a mother of two, says I saw him at 22:15 near my flat. Her number is "
               "07700 900123 and her email is anna@example.com. The suspect said he sells from the van.")
    flags = find_flags(summary)
    assert_well_formed(summary, flags)
    assert [(flag.kind, flag.text) for flag in flags] == [
        ("gendered", "a mother of two"), ("first_person", "I saw"), ("gendered", "him"),
        ("exact_time", "at 22:15"), ("first_person", "my flat"), ("gendered", "Her"), ("phone", "07700 900123"),
        ("gendered", "her"), ("email", "anna@example.com"),
    ]


def test_the_longer_of_two_overlapping_matches_wins() -> None:
    summary = "Write to me07700900123@example.com about it."
    flags = find_flags(summary)
    assert [(flag.kind, flag.text) for flag in flags] == [("email", "me07700900123@example.com")]


@pytest.mark.parametrize("summary", [
    "At 22:15 I saw my neighbour call 07700 900123; the caller said she was scared.",
    "Phone +44 7700 900123 or email x@example.org. We heard him at half past 9 with our friend.",
    "The tipster's husband, myself and us met at 10pm. The female caller is a widow of 80.",
])
def test_every_flag_points_at_its_own_text_and_none_overlap(summary: str) -> None:
    flags = find_flags(summary)
    assert flags
    assert_well_formed(summary, flags)


def test_fingerprints_ignore_case_and_spacing() -> None:
    first = find_flags("My   Neighbour sells. Call 07700 900123 at 10 PM.")
    second = find_flags("my neighbour sells. Call 07700 900123 at 10 pm.")
    assert [flag.fingerprint for flag in first] == [flag.fingerprint for flag in second]
    assert first[0].fingerprint == "first_person:my neighbour"
    assert find_flags("my\nneighbour")[0].fingerprint == "first_person:my neighbour"


def test_every_kind_has_a_plain_reason() -> None:
    summary = "I saw 07700 900123 and a@b.com at 22:15. The caller said she knew."
    kinds = {flag.kind: flag.reason for flag in find_flags(summary)}
    assert set(kinds) == set(KINDS)
    assert all(10 < len(reason) < 250 for reason in kinds.values())


@pytest.mark.parametrize("long_input", [
    CLEAN_SUMMARY * 480,
    "a" * 50_000,
    "1" * 50_000,
    "1 " * 25_000,
    "1-" * 25_000,
    "(1" * 25_000,
    "a." * 25_000,
    "a@" * 25_000,
    "x@y." * 12_500,
    "I " * 25_000,
    "my " * 16_667,
    "the caller, a " * 3_572,
    "ten to " * 7_143,
    "at half " * 6_250,
    "." * 50_000,
    " " * 50_000,
])
def test_a_long_summary_is_handled_without_backtracking(flag_finder: Pool, long_input: str) -> None:
    """Each of these makes a naive pattern backtrack for minutes; here they return at once."""
    flags = flags_within(flag_finder, long_input[:50_000], SECONDS_PER_LONG_SUMMARY)
    assert_well_formed(long_input[:50_000], flags)


@pytest.fixture(scope="module")
def flag_finder() -> Iterator[Pool]:
    """A separate process to run find_flags in: a regex cannot be interrupted in this one."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    yield pool
    pool.terminate()
    pool.join()


def flags_within(pool: Pool, summary: str, seconds: float) -> list[Flag]:
    """find_flags(summary) in the pool's process; a failure, not a hang, when it takes too long."""
    pending = pool.apply_async(find_flags, (summary,))
    try:
        return pending.get(timeout=seconds)
    except multiprocessing.TimeoutError:
        pool.terminate()  # the stuck process; the next test's call fails fast on a closed pool
        pytest.fail(f"find_flags took over {seconds} s on {len(summary)} characters "
                    f"starting {summary[:30]!r}: a pattern backtracks")
