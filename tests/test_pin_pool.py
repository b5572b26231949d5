"""PINs minted ahead (`ivr.core.pin_pool`): a new tip's webhook takes a PIN and its argon2
hash from a stock the clock keeps, instead of hashing there. Each goes to one tip only,
none is readable in Redis, a returning tipster's PIN still proves the tip, and an empty
stock (or Redis away) changes nothing but the time the webhook takes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import redis

from dev.processes import free_port, process_environment, start, wait_until
from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.pin_pool import PinPool
from ivr.core.references import is_valid_pin
from ivr.core.secret_rotation import rotate
from ivr.core.tips import PIN_HASHER
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER
from tests.test_sms_pins import codes_in


def test_a_pin_taken_from_the_stock_is_this_tips_alone_and_its_hash_proves_it(redis_client, settings) -> None:
    pool = PinPool(redis_client, settings.secret_keys)
    assert pool.take() is None  # an empty stock: the caller mints on the spot
    assert pool.refill(stock=3, at_most=10) == 3
    assert pool.refill(stock=3, at_most=10) == 0  # full
    taken = [pool.take() for _ in range(3)]
    assert all(minted is not None for minted in taken)
    pins = [minted.pin for minted in taken if minted]
    assert len({*pins}) == 3 and all(is_valid_pin(pin) for pin in pins)
    assert all(PIN_HASHER.verify(minted.pin_hash, minted.pin) for minted in taken if minted)
    assert pool.take() is None and redis_client.llen(keys.PIN_POOL) == 0


def test_no_pin_in_the_stock_can_be_read_without_the_secret_key(redis_client, settings) -> None:
    pool = PinPool(redis_client, settings.secret_keys)
    pool.refill(stock=20, at_most=20)
    raw = b"".join(redis_client.lrange(keys.PIN_POOL, 0, -1))
    minted = [pool.take() for _ in range(20)]
    assert all(m is not None and m.pin.encode() not in raw and m.pin_hash.encode() not in raw for m in minted)


def test_refilling_adds_at_most_its_share_and_stops_when_asked(redis_client, settings) -> None:
    pool = PinPool(redis_client, settings.secret_keys)
    assert pool.refill(stock=10, at_most=4) == 4
    asked = []
    assert pool.refill(stock=10, at_most=4, stopping=lambda: asked.append(1) is None and len(asked) > 2) == 2
    assert redis_client.llen(keys.PIN_POOL) == 6


def test_an_entry_sealed_under_a_retired_key_is_dropped_not_used(redis_client, settings) -> None:
    PinPool(redis_client, ("an old secret key, retired since: " + "x" * 32,)).refill(stock=1, at_most=1)
    pool = PinPool(redis_client, settings.secret_keys)
    assert pool.take() is None
    assert redis_client.llen(keys.PIN_POOL) == 0


def test_with_redis_away_there_is_nothing_to_take_and_no_error(settings) -> None:
    away = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    assert PinPool(away, settings.secret_keys).take() is None


def test_a_call_stores_the_hash_minted_ahead_and_its_pin_proves_the_tip(app, twilio: TwilioLike,
                                                                         redis_client) -> None:
    core = app.extensions["tipline"]
    core.pin_pool.refill(stock=1, at_most=1)
    reference, pin = leave_a_message(twilio.call(CALLER_NUMBER), "1", "2")
    assert redis_client.llen(keys.PIN_POOL) == 0  # taken by the call
    stored = core.tips.pin_hash(reference)
    assert stored and PIN_HASHER.verify(stored, pin)
    # argon2 salts every hash: only the stock's own hash could be the one stored. A second
    # call, with the stock empty, gets a PIN hashed on the spot that proves its tip as well.
    second_reference, second_pin = leave_a_message(twilio.call(CALLER_NUMBER), "1", "2")
    assert PIN_HASHER.verify(core.tips.pin_hash(second_reference), second_pin)


def test_a_text_gets_a_pin_minted_ahead_and_it_proves_the_tip(app, twilio: TwilioLike, redis_client) -> None:
    core = app.extensions["tipline"]
    core.pin_pool.refill(stock=1, at_most=1)
    phone = Phone(twilio, CALLER_NUMBER)
    reference, pin = codes_in(phone.sends("Two men sell cocaine from a grey Audi outside the bookies on Mill Lane."))
    phone.sends("1")
    phone.sends("DONE")
    assert redis_client.llen(keys.PIN_POOL) == 0
    assert PIN_HASHER.verify(core.tips.pin_hash(reference), pin)


def test_the_running_clock_keeps_a_stock(environment: dict[str, str], redis_client, tmp_path: Path) -> None:
    clock = start([sys.executable, "-m", "workers.clock"], process_environment(environment), tmp_path / "clock.log")
    try:
        wait_until(lambda: redis_client.llen(keys.PIN_POOL) >= 20, timeout=60, what="the clock to mint PINs ahead")
    finally:
        clock.send_signal(signal.SIGTERM)
        assert clock.wait(timeout=20) == 0, (tmp_path / "clock.log").read_text()[-2000:]


def test_rotating_the_secret_key_drops_the_stock_sealed_under_the_old_one(app, redis_client) -> None:
    core = app.extensions["tipline"]
    core.pin_pool.refill(stock=2, at_most=2)
    rotate(core)
    assert redis_client.llen(keys.PIN_POOL) == 0
