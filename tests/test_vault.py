"""The vault: sealed values open only for their own purpose and key, and never when altered."""

from __future__ import annotations

import re

import pytest

from ivr.core.vault import CannotOpen, ChainMac, KeyedDigest, Sealer

SECRET = "s" * 48


def test_a_sealed_value_opens_for_its_purpose_only() -> None:
    sealed = Sealer(SECRET, "call-state.step").seal(b'{"pin":"1234"}')
    assert b"1234" not in sealed
    assert Sealer(SECRET, "call-state.step").open(sealed) == b'{"pin":"1234"}'
    with pytest.raises(CannotOpen):
        Sealer(SECRET, "recording-handle").open(sealed)
    with pytest.raises(CannotOpen):
        Sealer("t" * 48, "call-state.step").open(sealed)


@pytest.mark.parametrize("damage", [lambda b: b[:-1], lambda b: b[:5], lambda b: bytes([b[0] ^ 1]) + b[1:],
                                    lambda b: b[:20] + bytes([b[20] ^ 0x80]) + b[21:]])
def test_an_altered_value_does_not_open(damage) -> None:
    sealer = Sealer(SECRET, "p")
    with pytest.raises(CannotOpen):
        sealer.open(damage(sealer.seal(b"some plaintext that is long enough")))


def test_sealing_twice_gives_different_ciphertexts() -> None:
    sealer = Sealer(SECRET, "p")
    assert sealer.seal(b"x") != sealer.seal(b"x")


def test_keyed_digests_are_stable_per_key_and_purpose() -> None:
    sid = "RE" + "0" * 32
    assert KeyedDigest(SECRET, "recording")(sid) == KeyedDigest(SECRET, "recording")(sid)
    assert KeyedDigest(SECRET, "recording")(sid) != KeyedDigest(SECRET, "other")(sid)
    assert KeyedDigest(SECRET, "recording")(sid) != KeyedDigest("t" * 48, "recording")(sid)
    assert sid not in KeyedDigest(SECRET, "recording")(sid)


def test_chain_macs_bind_the_previous_link_the_entry_and_the_key() -> None:
    chain = ChainMac(SECRET)
    first = chain.mac("0" * 64, b'[1,"view"]')
    assert re.fullmatch(r"[0-9a-f]{64}", first) and first == ChainMac(SECRET).mac("0" * 64, b'[1,"view"]')
    assert chain.verify("0" * 64, b'[1,"view"]', first)
    assert not chain.verify("1" * 64, b'[1,"view"]', first)
    assert not chain.verify("0" * 64, b'[1,"claim"]', first)
    assert not chain.verify("0" * 64, b'[1,"view"]', first[:-1] + ("1" if first[-1] == "0" else "0"))
    assert not ChainMac("t" * 48).verify("0" * 64, b'[1,"view"]', first)
    assert not chain.verify("0" * 64 + "\n", b'[1,"view"]', first)
    with pytest.raises(ValueError):
        chain.mac("a\nb", b"")
