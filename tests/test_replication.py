"""REDIS_REPLICA_ACKS against a Redis with no replica: what must wait for a replica refuses,
as if Redis were away (ivr/core/replication.py). The failover itself: tests/test_sentinel.py."""

from __future__ import annotations

import time

import pytest
import redis

from config.settings import Settings
from dev.twilio.texts import Phone
from ivr import create_app
from ivr.core import keys
from ivr.core.health_report import FAIL, build_report
from ivr.core.replication import REPLICA_TIMEOUT_MS, NotReplicated, ReplicaBarrier
from tests.calls import leave_a_message
from tests.conftest import twilio_for


@pytest.fixture
def unreplicated(environment: dict[str, str], redis_client: redis.Redis):
    """The app, told that one replica must hold each commit, on the test Redis, which has none."""
    app = create_app(Settings.from_env({**environment, "REDIS_REPLICA_ACKS": "1"}))
    yield app
    app.extensions["tipline"].redis.close()


def test_settings_default_to_one_acknowledgement_with_sentinels_and_none_without(environment) -> None:
    assert Settings.from_env(environment).redis_replica_acks == 0
    with_sentinels = Settings.from_env({**environment, "REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380",
                                        "REDIS_PASSWORD": "data-password"})
    assert with_sentinels.redis_replica_acks == 1
    assert with_sentinels.redis_sentinel.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert with_sentinels.redis_sentinel.master_name == "tipline"
    assert "data-password" not in repr(with_sentinels)


def test_production_accepts_sentinels_in_place_of_redis_url(tmp_path) -> None:
    settings = Settings.from_env({
        "TIPLINE_ENV": "production", "TIPLINE_VAR_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32, "SECRET_KEY": "k" * 40, "VAULT_KEYS": "k1:" + "A" * 43 + "=",
        "AUDIT_KEY": "a" * 40, "PERIOD_KEYS_DIR": str(tmp_path), "REDIS_SENTINELS": "10.0.0.1:26379"})
    assert settings.redis_sentinel is not None and settings.redis_replica_acks == 1


def test_without_acknowledgements_asked_for_nothing_is_written_or_waited(redis_client) -> None:
    ReplicaBarrier(redis_client, 0).confirm()
    assert not redis_client.exists(keys.REPLICATION_PROBE)


def test_with_no_replica_to_acknowledge_the_barrier_refuses_after_its_timeout(redis_client) -> None:
    started = time.monotonic()
    with pytest.raises(NotReplicated, match="0 of 1 replica"):
        ReplicaBarrier(redis_client, 1, timeout_ms=200).confirm()
    assert 0.15 < time.monotonic() - started < 2
    assert isinstance(NotReplicated("x"), redis.RedisError)  # so "Redis away" handling covers it


def test_a_recording_callback_is_not_answered_as_stored_and_the_provider_keeps_it(
        unreplicated, standin, settings) -> None:
    call = twilio_for(unreplicated, settings, standin).call("+447700900123")
    leave_a_message(call, "1", "2", seconds=2)  # the caller hears the codes and goodbye as usual
    (callback,) = call.recordings
    assert callback.status == 503  # "not stored": the provider sweep takes it in once a replica is back
    assert [held.sid for held in standin.recordings()] == [callback.form["RecordingSid"]]
    started = time.monotonic()
    with unreplicated.extensions["tipline"].provider() as provider, pytest.raises(NotReplicated):
        provider.delete_recording(callback.form["RecordingSid"])  # nothing deleted before a replica has it
    assert time.monotonic() - started >= REPLICA_TIMEOUT_MS / 1000 * 0.9
    assert len(standin.recordings()) == 1


def test_a_text_is_answered_with_the_failure_reply_until_a_replica_holds_it(unreplicated, settings) -> None:
    phone = Phone(twilio_for(unreplicated, settings), "+447700900124")
    reply = phone.sends("Drugs sold from the flat above the bakery on Mill Lane.")
    assert "something went wrong" in reply and "999" in reply


def test_health_fails_the_replicas_check_naming_what_to_do(unreplicated) -> None:
    core = unreplicated.extensions["tipline"]
    report = build_report(core.redis, None, replicas_required=core.settings.redis_replica_acks)
    (check,) = [c for c in report.checks if c.name == "redis replicas"]
    assert check.status == FAIL and check.value.startswith("0 connected") and "replica" in check.action
