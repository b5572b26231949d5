"""Rotating SECRET_KEY: nothing in flight is lost, nobody enrols again, nothing is taken in twice.

Each test deploys the app again with the rotated environment (`SECRET_KEY=new,old`, then
`new` alone), as an operator would, on the same real Redis and provider stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from rq import Queue

from config.settings import Settings, SettingsError
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from ivr import cli, create_app
from ivr.core import Core, keys
from ivr.core.provider import Provider
from ivr.core.secret_rotation import GRACE_SECONDS, rotate, status
from ivr.core.tips import TRANSCRIPTION_FAILED
from ivr.secret_cli import new_key
from tests.conftest import PUBLIC_BASE_URL
from tests.console_people import ConsoleClient, enrolled
from tests.test_sms_pins import REFUSED, a_texted_tip, wrong
from workers.context import WorkerContext
from workers.sweep import sweep_provider

CALLER = "+447700900377"


class Deployment:
    """The app as deployed now; `with_secret_key` deploys it again with another SECRET_KEY."""

    def __init__(self, environment: dict[str, str], standin: StandIn) -> None:
        self.environment, self.standin = environment, standin
        self.old_key = environment["SECRET_KEY"]
        self.apps: list[Flask] = []
        self.app = self._deploy(environment)

    def _deploy(self, environment: dict[str, str]) -> Flask:
        self.environment = environment
        self.app = create_app(Settings.from_env(environment))
        self.apps.append(self.app)
        return self.app

    def with_secret_key(self, secret_key: str) -> Flask:
        return self._deploy({**self.environment, "SECRET_KEY": secret_key})

    @property
    def core(self) -> Core:
        core: Core = self.app.extensions["tipline"]
        return core

    def twilio(self) -> TwilioLike:
        """Twilio's side, always talking to the app deployed at the moment it posts."""

        def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
            parts = urlsplit(url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            response = self.app.test_client().post(path, data=form, headers=headers)
            return response.status_code, response.get_data(as_text=True)

        settings = self.core.settings
        return TwilioLike(transport, PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token,
                          provider=self.standin)

    def sweep(self) -> int:
        """One provider sweep round by the deployed workers; how many recordings it took in."""
        with Provider(self.core.settings) as provider:
            return sweep_provider(WorkerContext(core=self.core, provider=provider), grace=GRACE_NONE).taken_in


GRACE_NONE = timedelta(0)


@pytest.fixture
def deployment(environment: dict[str, str], standin: StandIn, redis_client: redis.Redis) -> Iterator[Deployment]:
    deployed = Deployment(environment, standin)
    yield deployed
    for app in deployed.apps:
        app.extensions["tipline"].redis.close()


def transcription_jobs(redis_client: redis.Redis) -> list[str]:
    return [job for name in keys.RECORDING_QUEUES for job in Queue(name, connection=redis_client).job_ids]


def test_a_call_in_progress_when_the_key_rotates_completes(deployment: Deployment, redis_client) -> None:
    caller = deployment.twilio().call(CALLER)
    caller.dials().presses("1")  # the menu step's token is sealed and signed under the old key
    new = new_key()
    deployment.with_secret_key(f"{new},{deployment.old_key}")
    caller.presses("1").records(seconds=30)
    assert len(transcription_jobs(redis_client)) == 1
    assert len(deployment.core.tips.queue.tip_ids()) == 1


def test_a_late_callback_with_an_old_token_is_taken_once_after_the_rotation(deployment: Deployment,
                                                                             redis_client) -> None:
    twilio = deployment.twilio()
    caller = twilio.call(CALLER)
    caller.dials().presses("1").presses("1").records(seconds=30, deliver_callback=False)
    deployment.with_secret_key(f"{new_key()},{deployment.old_key}")
    url, form = caller.pending_callbacks[0]
    assert twilio.post(url, form).status == 204  # its token was minted under the old key
    assert twilio.post(url, form).status == 204
    assert len(transcription_jobs(redis_client)) == 1
    (reference,) = deployment.core.tips.queue.tip_ids()
    assert len(deployment.core.tips.get(reference).parts) == 1


def test_a_repeat_callback_after_the_rotation_finds_the_recording_seen(deployment: Deployment,
                                                                        redis_client) -> None:
    twilio = deployment.twilio()
    caller = twilio.call(CALLER)
    caller.dials().presses("1").presses("1").records(seconds=30)  # taken in under the old key
    deployment.with_secret_key(f"{new_key()},{deployment.old_key}")
    assert twilio.post(caller.recordings[0].url, caller.recordings[0].form).status == 204
    assert len(transcription_jobs(redis_client)) == 1
    (reference,) = deployment.core.tips.queue.tip_ids()
    assert len(deployment.core.tips.get(reference).parts) == 1


def test_the_sweep_does_not_take_a_kept_recording_in_twice_after_the_rotation(deployment: Deployment,
                                                                               redis_client) -> None:
    # Given a recording whose transcription failed: it is kept at the provider for a person
    caller = deployment.twilio().call(CALLER)
    caller.dials().presses("1").presses("1").records(seconds=30)
    (reference,) = deployment.core.tips.queue.tip_ids()
    recording_sid = caller.recordings[0].form["RecordingSid"]
    deployment.core.tips.finish_part(reference, 0, TRANSCRIPTION_FAILED, kept_audio={"recording_sid": recording_sid})
    # When the key rotates, the sweep runs, and later the old key is dropped
    new = new_key()
    deployment.with_secret_key(f"{new},{deployment.old_key}")
    assert deployment.sweep() == 0
    deployment.with_secret_key(new)
    # Then the sweep still knows the recording: no second tip
    assert deployment.sweep() == 0
    assert deployment.core.tips.queue.tip_ids() == [reference]
    assert recording_sid in [held.sid for held in deployment.standin.recordings()]  # kept, not deleted


def test_totp_sign_in_works_after_rotate_and_the_old_key_dropped(deployment: Deployment) -> None:
    sam = enrolled(deployment.app, "sam")
    new = new_key()
    deployment.with_secret_key(f"{new},{deployment.old_key}")
    assert ConsoleClient(deployment.app, sam).signs_in().status_code == 302  # during the grace period
    report = rotate(deployment.core)
    assert report.totp_resealed == 1 and rotate(deployment.core).totp_resealed == 0  # idempotent
    deployment.with_secret_key(new)
    assert ConsoleClient(deployment.app, sam).signs_in(code=sam.code(1)).status_code == 302


def test_without_rotate_dropping_the_old_key_would_lock_the_console_out(deployment: Deployment) -> None:
    sam = enrolled(deployment.app, "sam")
    deployment.with_secret_key(new_key())
    assert ConsoleClient(deployment.app, sam).signs_in().status_code != 302


def test_a_pin_lock_survives_the_rotation_and_the_old_key_dropped(deployment: Deployment) -> None:
    twilio = deployment.twilio()
    reference, pin = a_texted_tip(twilio)
    guesser = Phone(twilio, "+447700900502")
    for guess in wrong(pin, 5):
        guesser.sends(f"REF {reference} PIN {guess} x")
    tipster = Phone(twilio, "+447700900501")
    assert tipster.sends(f"REF {reference} PIN {pin} it is me") == REFUSED  # locked
    new = new_key()
    deployment.with_secret_key(f"{new},{deployment.old_key}")
    assert deployment.core.pin_guard.under_attack(reference)
    assert rotate(deployment.core).pin_guards_moved == 1
    deployment.with_secret_key(new)
    assert deployment.core.pin_guard.under_attack(reference)
    assert tipster.sends(f"REF {reference} PIN {pin} it is me") == REFUSED  # still locked


def test_status_says_until_when_the_old_key_is_needed(deployment: Deployment, monkeypatch, capsys) -> None:
    assert not status(deployment.core).old_keys_needed(0)  # one key: nothing needs another
    new = new_key()
    deployment.with_secret_key(f"{new},{deployment.old_key}")
    assert status(deployment.core).old_keys_needed(0)  # rotate has not run
    for name, value in deployment.environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["secret", "rotate"]) == 0
    assert "keep the older key(s) listed until" in capsys.readouterr().out
    state = status(deployment.core)
    assert state.rotated_at is not None
    assert state.old_keys_needed(state.rotated_at + GRACE_SECONDS - 1)
    assert not state.old_keys_needed(state.rotated_at + GRACE_SECONDS)
    assert cli.main(["secret", "status"]) == 0
    assert "needed until" in capsys.readouterr().out
    assert new not in str(deployment.core.redis.hgetall(keys.SECRET_ROTATION))


def test_secret_key_is_a_list_of_long_distinct_keys(environment: dict[str, str]) -> None:
    first, second = new_key(), new_key()
    settings = Settings.from_env({**environment, "SECRET_KEY": f"{first}, {second}"})
    assert settings.secret_keys == (first, second) and settings.secret_key == first
    for bad in (f"{first},short", f"{first},{first}", f"{first},"):
        with pytest.raises(SettingsError, match="SECRET_KEY"):
            Settings.from_env({**environment, "SECRET_KEY": bad})
