"""Reference numbers and PINs given to tipsters.

A reference is 10 random digits plus a Damm check digit: random so that it says nothing
about when or in what order tips arrived, and checked so that a mistyped or swapped digit
is caught when a tipster quotes it back. The PIN proves the quoter is the tipster.

PINs are 6 digits: with 5 tries per lock-out window and locks that grow to a week, a
million PINs take decades to search, where 4 digits fell in about six weeks. References
minted before that carry a 4-digit PIN, which is still accepted when quoted.
"""

from __future__ import annotations

import secrets

REFERENCE_RANDOM_DIGITS = 10
PIN_DIGITS = 6
# Lengths a quoted PIN may have: today's, and the 4 digits older references were given.
QUOTED_PIN_DIGITS = (PIN_DIGITS, 4)

# The Damm algorithm's quasigroup of order 10 (weakly totally anti-symmetric): it detects
# every single-digit error and every adjacent transposition.
_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_check_digit(digits: str) -> str:
    interim = 0
    for digit in digits:
        interim = _DAMM_TABLE[interim][int(digit)]
    return str(interim)


def new_reference() -> str:
    body = "".join(str(secrets.randbelow(10)) for _ in range(REFERENCE_RANDOM_DIGITS))
    return body + damm_check_digit(body)


def is_valid_reference(candidate: str) -> bool:
    """True for a well-formed reference whose check digit matches (not whether it exists)."""
    return (
        len(candidate) == REFERENCE_RANDOM_DIGITS + 1
        and candidate.isascii()
        and candidate.isdigit()
        and damm_check_digit(candidate) == "0"
    )


def new_pin() -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(PIN_DIGITS))


def is_valid_pin(candidate: str) -> bool:
    """True for a PIN of a length we ever minted (not whether it is right)."""
    return len(candidate) in QUOTED_PIN_DIGITS and candidate.isascii() and candidate.isdigit()
