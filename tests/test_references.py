"""References catch every mistyped digit and every swapped pair; they are random."""

from __future__ import annotations

from ivr.core.references import PIN_DIGITS, damm_check_digit, is_valid_reference, new_pin, new_reference


def test_known_damm_check_digit() -> None:
    assert damm_check_digit("572") == "4"  # the published worked example
    assert is_valid_reference("57200000004") is False  # right digit, wrong length
    assert is_valid_reference("5720000000" + damm_check_digit("5720000000"))


def test_every_single_digit_error_and_adjacent_swap_is_caught() -> None:
    for _ in range(200):
        reference = new_reference()
        assert is_valid_reference(reference)
        for position in range(len(reference)):
            for digit in "0123456789":
                if digit != reference[position]:
                    typo = reference[:position] + digit + reference[position + 1:]
                    assert not is_valid_reference(typo)
        for position in range(len(reference) - 1):
            a, b = reference[position], reference[position + 1]
            if a != b:
                swapped = reference[:position] + b + a + reference[position + 2:]
                assert not is_valid_reference(swapped)


def test_malformed_references_are_refused() -> None:
    for candidate in ["", "abc", "1234567890", "123456789012", "١٢٣٤٥٦٧٨٩٠٠", " 5720000000" + "4"]:
        assert not is_valid_reference(candidate)


def test_references_and_pins_spread_over_their_whole_range() -> None:
    references = {new_reference() for _ in range(2000)}
    assert len(references) == 2000
    assert {r[0] for r in references} == set("0123456789")
    pins = [new_pin() for _ in range(2000)]
    assert all(len(p) == PIN_DIGITS and p.isdigit() for p in pins)
    assert len(set(pins)) > 1500
