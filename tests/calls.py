"""Helpers that read what a caller heard, and run whole calls the way tests need them."""

from __future__ import annotations

import re

from dev.twilio.calls import Call

SPOKEN_CODE = re.compile(r"\d(?:, \d)+")


PIN_DIGITS = 6  # as minted since the PIN guard (ivr/core/pin_guard.py); not read from the code under test


def codes_heard(text: str) -> tuple[str, str]:
    """The reference (11 digits) and PIN (6 digits) read out in `text`."""
    codes = [match.replace(", ", "") for match in SPOKEN_CODE.findall(text)]
    references = [c for c in codes if len(c) == 11]
    pins = [c for c in codes if len(c) == PIN_DIGITS]
    assert references and pins, f"no reference and PIN read out in: {text!r}"
    return references[0], pins[0]


def leave_a_message(call: Call, language_digit: str, category_digit: str, seconds: int | None = 30,
                    audio: bytes | None = None) -> tuple[str, str]:
    """Dial, choose, record (silence, or `audio`), hear the codes back, hang up; returns (reference, PIN)."""
    call.dials().presses(language_digit).presses(category_digit)
    codes = codes_heard(call.heard_since_last_step())
    call.records(seconds=None if audio else seconds, audio=audio)
    assert codes_heard(call.heard_since_last_step()) == codes
    call.presses("9")
    assert call.ended
    return codes
