"""Confidence a handler can see: doubtful words marked, voice text labelled as a machine's,
the recogniser's word probabilities sealed with the transcript, and the cap on recordings
kept because a transcript is doubtful.

Real Redis and the real console; a voice part is finished through `TipStore.finish_part`
with words built here (the recogniser's own output, with real speech, is in
test_confidence_pipeline.py). The words are the case that started it: a caller said
"Tooley Street", the model wrote "Julie Street".
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import redis

from config.settings import Settings, SettingsError
from ivr.core import keys
from ivr.core.confidence import (
    DOUBTFUL_MEAN_PROBABILITY,
    DOUBTFUL_WORD_PROBABILITY,
    DOUBTFUL_WORD_SHARE,
    Piece,
    Word,
    doubtful_overall,
    marked_pieces,
    words_as_json,
)
from ivr.core.doubtful_audio import WINDOW_DAYS, DoubtfulAudioAllowance
from ivr.core.tips import READY, TipStore
from tests.calls import leave_a_message
from tests.console_people import ConsoleClient, a_texted_tip
from tests.privacy import scan_redis

HEARD = "The chicken shop on Julie Street is used to store stolen phones."
HEARD_WORDS = (Word(" The", 0.91), Word(" chicken", 0.88), Word(" shop", 0.83), Word(" on", 0.89),
               Word(" Julie", 0.27), Word(" Street", 0.71), Word(" is", 0.93), Word(" used", 0.9),
               Word(" to", 0.95), Word(" store", 0.86), Word(" stolen", 0.77), Word(" phones.", 0.92))
DOUBTFUL_MARK = re.compile(r'<mark class="doubtful" title="the recogniser was unsure of this word">([^<]*)</mark>')
MACHINE_LABEL = "Machine transcript of the tipster's recording: words may be wrong"
OWN_TEXT_LABEL = "Text from the tipster, exactly as received."
REPORT = ("Two men sell cocaine from a grey Golf outside the chip shop on Mare Street, "
          "most evenings, and they keep it in the boot.")


@pytest.fixture
def tips(app) -> TipStore:
    return app.extensions["tipline"].tips


@pytest.fixture
def signed_in(app, sam) -> ConsoleClient:
    client = ConsoleClient(app, sam)
    assert client.signs_in().status_code == 302
    return client


def a_voice_tip(twilio) -> str:
    """A caller leaves a message (its transcript is written by the test); returns the reference."""
    reference, _pin = leave_a_message(twilio.call("+447700900491"), "1", "1", seconds=12)
    return reference


# -- which words are doubtful, and where they are in the text ------------------------------------

def test_only_the_doubtful_word_is_its_own_piece_and_the_pieces_spell_the_text() -> None:
    pieces = marked_pieces(HEARD, HEARD_WORDS)
    assert "".join(piece.text for piece in pieces) == HEARD
    assert [piece.text for piece in pieces if piece.doubtful] == ["Julie"]
    assert pieces == (Piece("The chicken shop on "), Piece("Julie", True),
                      Piece(" Street is used to store stolen phones."))


def test_words_that_do_not_match_the_text_mark_nothing_after_the_mismatch() -> None:
    words = (Word(" The", 0.1), Word(" goat", 0.1), Word(" Julie", 0.1))
    pieces = marked_pieces(HEARD, words)
    assert "".join(piece.text for piece in pieces) == HEARD
    assert [piece.text for piece in pieces if piece.doubtful] == ["The"]  # "Julie" is not marked out of place


def test_a_word_joined_to_the_one_before_it_is_found_in_the_text() -> None:
    text = "Twenty-five of them, $1000 each."
    words = (Word(" Twenty", 0.9), Word("-five", 0.2), Word(" of", 0.9), Word(" them,", 0.9), Word(" $1000", 0.3),
             Word(" each.", 0.9))
    assert [piece.text for piece in marked_pieces(text, words) if piece.doubtful] == ["-five", "$1000"]


def test_a_transcript_is_doubtful_overall_by_its_mean_or_by_its_share_of_doubtful_words() -> None:
    sure, unsure = DOUBTFUL_WORD_PROBABILITY + 0.4, DOUBTFUL_WORD_PROBABILITY - 0.01
    assert not doubtful_overall(HEARD_WORDS)  # one doubtful name in twelve words, mean 0.81
    assert not doubtful_overall(())  # nothing to judge
    assert doubtful_overall([Word(" a", DOUBTFUL_MEAN_PROBABILITY - 0.01)] * 4)  # each just sure enough, the mean not
    share = int(DOUBTFUL_WORD_SHARE * 20) + 1
    many_names = [Word(" x", unsure)] * share + [Word(" y", 0.99)] * (20 - share)
    assert sum(w.probability for w in many_names) / 20 >= DOUBTFUL_MEAN_PROBABILITY and doubtful_overall(many_names)
    assert not doubtful_overall([Word(" x", unsure)] * (share - 1) + [Word(" y", sure)] * (21 - share))


# -- stored sealed, read back, and old parts without them --------------------------------------------

def test_the_words_and_their_probabilities_are_sealed_with_the_transcript(twilio, tips, redis_client) -> None:
    reference = a_voice_tip(twilio)
    tips.finish_part(reference, 1, READY, transcript=HEARD, words=HEARD_WORDS)

    part = tips.get(reference).parts[0]
    assert part.words == HEARD_WORDS and part.channel == "voice" and part.machine_transcript
    assert not part.audio_kept
    stored = words_as_json(HEARD_WORDS)
    needles = {stored, "Julie", "chicken", '"0.27', ", 0.27]", json.dumps([" Julie", 0.27])}
    assert scan_redis(redis_client, needles) == []


def test_a_part_stored_before_words_were_kept_reads_without_marks(twilio, tips, redis_client) -> None:
    reference = a_voice_tip(twilio)
    tips.finish_part(reference, 1, READY, transcript=HEARD)  # as the worker did before
    redis_client.hdel(keys.tip(reference), "part:1:channel")  # and before parts recorded their channel

    part = tips.get(reference).parts[0]
    assert part.transcript == HEARD and part.words == () and part.channel == "voice" and not part.doubtful
    assert part.marked == (Piece(HEARD),)


# -- the console -------------------------------------------------------------------------------------

def test_the_tip_page_labels_a_machine_transcript_and_marks_only_the_doubtful_word(
        app, twilio, tips, signed_in: ConsoleClient) -> None:
    reference = a_voice_tip(twilio)
    tips.finish_part(reference, 1, READY, transcript=HEARD, words=HEARD_WORDS)
    app.extensions["tipline"].follow_up.answer_by_text(reference, "It is Tooley Street, by the station.", answers=None)

    assert signed_in.get(f"/console/tips/{reference}").status_code == 200
    page = signed_in.text()
    voice_part = page[page.index('id="part-1"'):page.index('id="part-2"')]
    text_part = page[page.index('id="part-2"'):]
    assert MACHINE_LABEL in voice_part and OWN_TEXT_LABEL not in voice_part
    assert DOUBTFUL_MARK.findall(page) == ["Julie"]
    assert "The chicken shop on <mark" in voice_part and "</mark> Street is used to store stolen phones." in voice_part
    assert OWN_TEXT_LABEL in text_part and MACHINE_LABEL not in text_part
    assert "It is Tooley Street, by the station." in text_part
    assert "/parts/1/audio" not in page  # a transcript that is not doubtful keeps no recording


def test_a_texted_tip_is_labelled_as_the_tipsters_own_text(twilio, signed_in: ConsoleClient) -> None:
    reference = a_texted_tip(twilio, "+447700900492", REPORT)
    signed_in.get(f"/console/tips/{reference}")
    page = signed_in.text()
    assert OWN_TEXT_LABEL in page and MACHINE_LABEL not in page and "<mark" not in page
    assert html.escape(REPORT, quote=True) in page


def test_a_doubtful_word_is_escaped_inside_its_mark(twilio, tips, signed_in: ConsoleClient) -> None:
    reference = a_voice_tip(twilio)
    said = "Meet at <b>the</b> flats & wait."
    tips.finish_part(reference, 1, READY, transcript=said,
                     words=(Word(" Meet", 0.9), Word(" at", 0.9), Word(" <b>the</b>", 0.1), Word(" flats", 0.9),
                            Word(" &", 0.9), Word(" wait.", 0.9)))
    signed_in.get(f"/console/tips/{reference}")
    assert DOUBTFUL_MARK.findall(signed_in.text()) == ["&lt;b&gt;the&lt;/b&gt;"]
    assert "<b>the</b>" not in signed_in.text() and "flats &amp; wait." in signed_in.text()


def test_a_doubtful_part_with_its_recording_kept_offers_the_disguised_copy(twilio, tips,
                                                                         signed_in: ConsoleClient) -> None:
    reference = a_voice_tip(twilio)
    unsure = tuple(Word(word.text, 0.3) for word in HEARD_WORDS)
    tips.finish_part(reference, 1, READY, transcript=HEARD, words=unsure,
                     kept_audio={"recording_sid": "RE" + "0" * 32, "doubtful": True})
    signed_in.get(f"/console/tips/{reference}")
    page = signed_in.text()
    assert f"/console/tips/{reference}/parts/1/audio" in page and "hear a <strong>disguised</strong> copy" in page
    assert "The recogniser was unsure of much of this part. Hear it before passing on" in page
    assert len(DOUBTFUL_MARK.findall(page)) == len(HEARD_WORDS)


def test_passing_on_a_tip_with_a_doubtful_part_warns_to_check_it(twilio, tips, signed_in: ConsoleClient) -> None:
    reference = a_voice_tip(twilio)
    tips.finish_part(reference, 1, READY, transcript=HEARD, words=tuple(Word(w.text, 0.3) for w in HEARD_WORDS))
    assert signed_in.claims_next() == reference
    signed_in.get(f"/console/tips/{reference}/pass-on")
    assert 'id="doubtful-parts"' in signed_in.text() and "unsure of much of part 1:" in signed_in.text()
    tips.finish_part(reference, 1, READY, transcript=HEARD, words=HEARD_WORDS)  # one doubtful word: no warning
    signed_in.get(f"/console/tips/{reference}/pass-on")
    assert 'id="doubtful-parts"' not in signed_in.text()


# -- the cap on recordings kept because their transcript is doubtful ------------------------------------

def test_the_first_doubtful_recording_is_kept_and_the_next_one_over_the_share_is_not(redis_client) -> None:
    allowance = DoubtfulAudioAllowance(redis_client, max_percent=20)
    assert allowance.count(doubtful=True)  # 1 of 1: a quiet window may keep its first
    assert not allowance.count(doubtful=True)  # 2 of 2 would be 100%
    for _ in range(8):
        assert not allowance.count(doubtful=False)  # 1 kept of 10 transcribed: 10%
    assert allowance.count(doubtful=True)  # 2 of 11: 18%, within 20%
    assert not allowance.count(doubtful=True)  # 3 of 12 would be 25%
    assert not DoubtfulAudioAllowance(redis_client, max_percent=0).count(doubtful=True)  # 0 keeps none


def test_the_share_is_counted_over_a_week_in_day_counters_that_expire_and_name_nothing(redis_client) -> None:
    day = datetime(2026, 11, 30, 12, tzinfo=UTC)
    now = [day - timedelta(days=WINDOW_DAYS)]
    allowance = DoubtfulAudioAllowance(redis_client, max_percent=50, clock=lambda: now[0])
    assert allowance.count(doubtful=True)
    assert not allowance.count(doubtful=True)  # the old day is full
    now[0] = day  # a week later, that day has left the window
    assert allowance.count(doubtful=True)

    counters = sorted(redis_client.scan_iter(match=keys.doubtful_audio_day("*")))
    assert counters == [keys.doubtful_audio_day("2026-11-23").encode(), keys.doubtful_audio_day("2026-11-30").encode()]
    for counter in counters:
        assert 0 < redis_client.ttl(counter) <= (WINDOW_DAYS + 1) * 24 * 3600
        assert set(redis_client.hgetall(counter)) <= {b"transcribed", b"kept"}


def test_a_cap_outside_0_to_100_is_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        DoubtfulAudioAllowance(redis_client, max_percent=101)


@pytest.mark.parametrize(("value", "expected"), [(None, 20), ("0", 0), ("100", 100), ("101", None), ("-1", None),
                                                 ("half", None)])
def test_the_cap_setting_is_a_percentage_and_names_itself_when_wrong(environment, value, expected) -> None:
    given = {**environment, **({"DOUBTFUL_AUDIO_MAX_PERCENT": value} if value is not None else {})}
    if expected is None:
        with pytest.raises(SettingsError, match="DOUBTFUL_AUDIO_MAX_PERCENT"):
            Settings.from_env(given)
    else:
        assert Settings.from_env(given).doubtful_audio_max_percent == expected
