"""Our REST client for the provider, against the stand-in of Twilio's API on loopback."""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from dev.phone_audio import silence
from dev.standin.client import StandIn
from dev.standin.server import StandInServer
from dev.twilio.calls import new_sid
from ivr.core.provider import (
    MAX_RECORDING_BYTES,
    BadIdentifier,
    CredentialsRefused,
    NotAudio,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RecordingNotFound,
    RecordingTooLarge,
    RedirectRefused,
    StillInProgress,
    redirect_hop,
)

WAV_PATH = r"/Recordings/RE[0-9a-f]{32}\.wav$"


@pytest.fixture
def provider(settings: Settings) -> Iterator[Provider]:
    with Provider(settings, timeout_seconds=2.0) as client:
        yield client


@pytest.fixture
def recording(standin: StandIn) -> tuple[str, str, bytes]:
    """A finished call's recording at the provider: (recording sid, call sid, WAV)."""
    recording_sid, call_sid, wav = new_sid("RE"), new_sid("CA"), silence(3)
    standin.call_started(call_sid)
    standin.put_recording(recording_sid, call_sid, wav, 3)
    standin.call_ended(call_sid)
    return recording_sid, call_sid, wav


def api_requests(standin: StandIn) -> list[tuple[str, str, int]]:
    return [(entry.method, entry.path.rsplit("/", 1)[-1], entry.status) for entry in standin.log()
            if entry.method != "ADMIN"]


# -- fetching audio ---------------------------------------------------------------------------

def test_a_recording_is_fetched_from_the_api_base_with_our_credentials(provider: Provider, standin: StandIn,
                                                                       recording: tuple[str, str, bytes]) -> None:
    recording_sid, _, wav = recording
    assert provider.fetch_recording(recording_sid) == wav
    assert api_requests(standin) == [("GET", f"{recording_sid}.wav", 200)]


def test_wrong_credentials_are_a_clear_error_that_names_the_settings(environment: dict[str, str], standin: StandIn,
                                                                     recording: tuple[str, str, bytes]) -> None:
    recording_sid, call_sid, _ = recording
    wrong = Settings.from_env({**environment, "TWILIO_AUTH_TOKEN": secrets.token_hex(16)})
    with Provider(wrong) as provider:
        for attempt in (lambda: provider.fetch_recording(recording_sid), lambda: provider.delete_call(call_sid),
                        provider.list_recordings):
            with pytest.raises(CredentialsRefused, match="TWILIO_AUTH_TOKEN"):
                attempt()
    assert {status for _, _, status in api_requests(standin)} == {401}
    assert [r.sid for r in standin.recordings()] == [recording_sid] and standin.calls() == {call_sid: "completed"}


def test_a_recording_the_provider_does_not_have_is_not_found(provider: Provider) -> None:
    with pytest.raises(RecordingNotFound):
        provider.fetch_recording(new_sid("RE"))


def test_a_server_error_is_worth_retrying_and_the_retry_succeeds(provider: Provider, standin: StandIn,
                                                                 recording: tuple[str, str, bytes]) -> None:
    recording_sid, _, wav = recording
    standin.fail_next("GET", WAV_PATH, status=500)
    with pytest.raises(ProviderUnavailable):
        provider.fetch_recording(recording_sid)
    assert provider.fetch_recording(recording_sid) == wav
    assert [status for _, _, status in api_requests(standin)] == [500, 200]


@pytest.mark.parametrize("status", [429, 502, 503])
def test_a_busy_or_failing_provider_is_unavailable_for_deletes_too(provider: Provider, standin: StandIn,
                                                                   recording: tuple[str, str, bytes],
                                                                   status: int) -> None:
    standin.fail_next("DELETE", r"/Recordings/", status=status)
    with pytest.raises(ProviderUnavailable):
        provider.delete_recording(recording[0])
    provider.delete_recording(recording[0])
    assert standin.recordings() == []


def test_an_unreachable_or_silent_provider_is_unavailable(environment: dict[str, str], settings: Settings,
                                                          standin: StandIn, recording: tuple[str, str, bytes]) -> None:
    gone = StandInServer(settings.twilio_account_sid, settings.twilio_auth_token).start()
    gone.stop()  # a port where nothing listens any more
    with Provider(Settings.from_env({**environment, "TWILIO_API_BASE": gone.url})) as provider:
        with pytest.raises(ProviderUnavailable):
            provider.fetch_recording(recording[0])
        with pytest.raises(ProviderUnavailable):
            provider.delete_call(recording[1])
    standin.hold("GET", WAV_PATH)
    with Provider(settings, timeout_seconds=0.5) as provider:
        with pytest.raises(ProviderUnavailable):
            provider.fetch_recording(recording[0])
    assert standin.release() == 1


@pytest.mark.parametrize("content_type, body", [
    ("text/html; charset=utf-8", b"<html><body>Sign in</body></html>"),
    ("application/json", b'{"sid": "RE"}'),
    ("audio/x-wav", b"ID3\x03\x00 an mp3, not a wav"),
    ("audio/x-wav", b""),
])
def test_an_answer_that_is_not_a_wav_file_is_not_audio(provider: Provider, standin: StandIn,
                                                       recording: tuple[str, str, bytes], content_type: str,
                                                       body: bytes) -> None:
    standin.answer_next("GET", WAV_PATH, content_type=content_type, body=body)
    with pytest.raises(NotAudio):
        provider.fetch_recording(recording[0])


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_recording_over_the_cap_is_too_large_whether_or_not_its_length_is_declared(
        provider: Provider, standin: StandIn, recording: tuple[str, str, bytes], declare_length: bool) -> None:
    standin.answer_next("GET", WAV_PATH, stream_bytes=MAX_RECORDING_BYTES + 1, declare_length=declare_length)
    with pytest.raises(RecordingTooLarge):
        provider.fetch_recording(recording[0])
    assert MAX_RECORDING_BYTES >= 2 * 9_600_000  # ten minutes at 8 kHz, 16-bit, with room to spare


# -- redirects and URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/",
    "https://evil.example.org/recording.wav",
    "https://api.twilio.com.evil.example.org/x.wav",
    "http://api.twilio.com/2010-04-01/x.wav",  # Twilio's host, but not over https
    "https://user:pass@media.twiliocdn.com/x.wav",
    "ftp://media.twiliocdn.com/x.wav",
])
def test_a_redirect_to_a_host_we_do_not_fetch_from_is_refused(provider: Provider, standin: StandIn,
                                                              recording: tuple[str, str, bytes],
                                                              location: str) -> None:
    standin.answer_next("GET", WAV_PATH, status=302, location=location)
    with pytest.raises(RedirectRefused):
        provider.fetch_recording(recording[0])
    assert len(api_requests(standin)) == 1


def test_a_redirect_to_another_port_on_the_same_host_is_refused_and_gets_nothing(
        provider: Provider, settings: Settings, standin: StandIn, recording: tuple[str, str, bytes]) -> None:
    with StandInServer(settings.twilio_account_sid, settings.twilio_auth_token) as elsewhere:
        standin.answer_next("GET", WAV_PATH, status=307, location=f"{elsewhere.url}/_standin/health")
        with pytest.raises(RedirectRefused):
            provider.fetch_recording(recording[0])
        assert StandIn(elsewhere.url).log() == []


def test_a_redirect_back_to_the_api_base_is_followed_twice_at_most(provider: Provider, standin: StandIn,
                                                                   recording: tuple[str, str, bytes]) -> None:
    recording_sid, _, wav = recording
    storage = f"{standin.url}/_standin/recordings/{recording_sid}.wav"
    standin.answer_next("GET", WAV_PATH, status=302, location=storage)
    assert provider.fetch_recording(recording_sid) == wav

    standin.answer_next("GET", WAV_PATH, status=302, location=f"/2010-04-01/hop/{recording_sid}.wav")
    standin.answer_next("GET", r"^/2010-04-01/hop/", status=302, location=f"/2010-04-01/hop/{recording_sid}.wav",
                        times=5)
    with pytest.raises(RedirectRefused, match="more than 2"):
        provider.fetch_recording(recording_sid)


def test_credentials_go_only_to_the_api_base_origin() -> None:
    api = ("https", "api.twilio.com", 443)
    current = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.wav"
    assert redirect_hop(api, current, "https://api.twilio.com:443/elsewhere.wav") == (
        "https://api.twilio.com:443/elsewhere.wav", True)
    assert redirect_hop(api, current, "/relative.wav") == ("https://api.twilio.com/relative.wav", True)
    for storage in ("https://com-twilio-us1-recording.s3.amazonaws.com/AC1/RE1?X-Amz-Signature=x",
                    "https://media.twiliocdn.com/RE1", "https://api.us1.twilio.com/RE1"):
        assert redirect_hop(api, current, storage) == (storage, False)
    elsewhere_on_twilio = "https://api.twilio.com:8443/x.wav"  # Twilio's, but not the API base's origin
    assert redirect_hop(api, current, elsewhere_on_twilio) == (elsewhere_on_twilio, False)
    stand_in = ("http", "127.0.0.1", 8080)
    assert redirect_hop(stand_in, "http://127.0.0.1:8080/a.wav", "http://127.0.0.1:8080/b.wav")[1] is True
    with pytest.raises(RedirectRefused):
        redirect_hop(stand_in, "http://127.0.0.1:8080/a.wav", "http://127.0.0.1:8081/b.wav")


def test_the_client_takes_sids_never_urls(provider: Provider, standin: StandIn) -> None:
    """A callback's RecordingUrl could name any host (SSRF): there is no way to hand one over."""
    for method in (provider.fetch_recording, provider.delete_recording, provider.delete_call, provider.delete_message):
        assert all("url" not in name.lower() for name in inspect.signature(method).parameters)
    recording_url = f"https://evil.example.org/2010-04-01/Accounts/X/Recordings/{new_sid('RE')}"
    with pytest.raises(BadIdentifier):
        provider.fetch_recording(recording_url)
    assert standin.log() == []


@pytest.mark.parametrize("operation, bad_sid", [
    ("fetch_recording", "RE123"),
    ("fetch_recording", "RE" + "A" * 32),  # Twilio's sids are lowercase hex
    ("fetch_recording", "CA" + "a" * 32),
    ("fetch_recording", "RE" + "a" * 32 + "/../../Calls"),
    ("fetch_recording", "RE" + "a" * 31 + "%"),
    ("delete_recording", "RE" + "a" * 32 + "\n"),
    ("delete_call", "RE" + "a" * 32),
    ("delete_call", "CA" + "a" * 32 + ".json?x="),
    ("delete_message", "CA" + "a" * 32),
    ("delete_message", "SMx"),
])
def test_sids_are_checked_before_they_go_in_a_url(provider: Provider, standin: StandIn, operation: str,
                                                  bad_sid: str) -> None:
    with pytest.raises(BadIdentifier) as refused:
        getattr(provider, operation)(bad_sid)
    assert bad_sid not in str(refused.value)
    assert standin.log() == []


def test_edge_and_region_in_the_environment_cannot_move_the_host(monkeypatch: pytest.MonkeyPatch,
                                                                 settings: Settings, standin: StandIn,
                                                                 recording: tuple[str, str, bytes]) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    with Provider(settings) as provider:
        assert [r.sid for r in provider.list_recordings()] == [recording[0]]
        provider.delete_call(recording[1])
    assert standin.calls() == {}


# -- deleting ------------------------------------------------------------------------------------

def test_deletes_are_idempotent(provider: Provider, standin: StandIn, recording: tuple[str, str, bytes]) -> None:
    recording_sid, call_sid, _ = recording
    message_sid = new_sid("SM")
    standin.put_message(message_sid, "there is a van outside", status="received")
    for _ in range(2):
        provider.delete_recording(recording_sid)
        provider.delete_call(call_sid)
        provider.delete_message(message_sid)
    provider.delete_recording(new_sid("RE"))  # never existed: gone all the same
    assert standin.recordings() == [] and standin.calls() == {} and standin.messages() == {}
    assert [status for _, _, status in api_requests(standin)] == [204, 204, 204, 404, 404, 404, 404]


def test_a_call_in_progress_cannot_be_deleted_until_it_has_ended(provider: Provider, standin: StandIn) -> None:
    call_sid = new_sid("CA")
    standin.call_started(call_sid)
    with pytest.raises(StillInProgress, match="20009"):
        provider.delete_call(call_sid)
    standin.call_ended(call_sid)
    provider.delete_call(call_sid)
    log = standin.log()
    refused = next(e for e in log if e.method == "DELETE" and e.status == 409)
    ended = next(e for e in log if e.path.endswith(f"/calls/{call_sid}/ended"))
    deleted = next(e for e in log if e.method == "DELETE" and e.status == 204)
    assert refused.seq < ended.seq < deleted.seq


@pytest.mark.parametrize("status", [400, 409])
def test_error_20009_means_still_in_progress_whatever_the_http_status(provider: Provider, standin: StandIn,
                                                                      status: int) -> None:
    message_sid = new_sid("MM")
    standin.put_message(message_sid, "", status="received")
    standin.fail_next("DELETE", r"/Messages/", status=status, code=20009)
    with pytest.raises(StillInProgress):
        provider.delete_message(message_sid)
    provider.delete_message(message_sid)


def test_a_message_not_yet_final_cannot_be_deleted(provider: Provider, standin: StandIn) -> None:
    message_sid = new_sid("SM")
    standin.put_message(message_sid, "a reply on its way", status="sending")
    with pytest.raises(StillInProgress):
        provider.delete_message(message_sid)
    assert message_sid in standin.messages()


# -- listing -------------------------------------------------------------------------------------

def test_every_page_of_recordings_is_listed_with_what_was_put(provider: Provider, standin: StandIn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    put = {}
    for age in range(130):  # more than one page of 100
        sid, call_sid = new_sid("RE"), new_sid("CA") if age % 2 else None
        standin.put_recording(sid, call_sid, silence(1), 1 + age % 7, created=now - timedelta(minutes=age))
        put[sid] = (call_sid, now - timedelta(minutes=age), 1 + age % 7)
    listed = provider.list_recordings()
    assert {r.sid: (r.call_sid, r.date_created, r.duration_seconds) for r in listed} == put
    assert len(listed) == 130 and sum(1 for e in api_requests(standin) if e[1].startswith("Recordings.json")) == 2


def test_recordings_are_listed_by_exact_creation_time_and_only_with_audio(provider: Provider,
                                                                          standin: StandIn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent, unfinished, absent = (new_sid("RE") for _ in range(4))
    standin.put_recording(old, None, silence(1), 1, created=now - timedelta(minutes=11))
    standin.put_recording(recent, None, silence(1), 1, created=now - timedelta(minutes=9))
    standin.put_recording(unfinished, None, b"", 0, created=now - timedelta(hours=2), status="in-progress")
    standin.put_recording(absent, None, b"", 0, created=now - timedelta(hours=2), status="absent")
    assert [r.sid for r in provider.list_recordings(created_before=now - timedelta(minutes=10))] == [old]
    assert {r.sid for r in provider.list_recordings()} == {old, recent}
    with pytest.raises(ValueError, match="timezone"):
        provider.list_recordings(created_before=datetime.now())


def test_a_failing_list_is_unavailable_not_empty(provider: Provider, standin: StandIn) -> None:
    standin.put_recording(new_sid("RE"), None, silence(1), 1)
    standin.fail_next("GET", r"/Recordings\.json$", status=503)
    with pytest.raises(ProviderUnavailable):
        provider.list_recordings()
    standin.answer_next("GET", r"/Recordings\.json$", content_type="text/html", body=b"<html>maintenance</html>")
    with pytest.raises(ProviderError):
        provider.list_recordings()
    assert len(provider.list_recordings()) == 1


def test_every_page_of_messages_is_listed_with_direction_status_and_creation(provider: Provider,
                                                                             standin: StandIn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    put = {}
    for age in range(130):  # more than one page of 100
        sid = new_sid("SM" if age % 3 else "MM")
        direction, status = ("outbound-reply", "delivered") if age % 2 else ("inbound", "received")
        standin.put_message(sid, "a text", status=status, direction=direction, created=now - timedelta(minutes=age))
        put[sid] = (direction, status, now - timedelta(minutes=age))
    listed = provider.list_messages()
    assert {m.sid: (m.direction, m.status, m.date_created) for m in listed} == put
    assert len(listed) == 130 and sum(1 for e in api_requests(standin) if e[1].startswith("Messages.json")) == 2
    assert not hasattr(listed[0], "body")


def test_messages_are_listed_by_exact_creation_time_and_direction(provider: Provider, standin: StandIn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old_reply, new_reply, old_inbound, sending = (new_sid("SM") for _ in range(4))
    standin.put_message(old_reply, "r", status="delivered", direction="outbound-reply",
                        created=now - timedelta(minutes=3))
    standin.put_message(new_reply, "r", status="delivered", direction="outbound-reply",
                        created=now - timedelta(minutes=1))
    standin.put_message(sending, "r", status="sending", direction="outbound-reply", created=now - timedelta(days=2))
    standin.put_message(old_inbound, "i", created=now - timedelta(hours=1))
    cutoff = now - timedelta(minutes=2)
    assert {m.sid for m in provider.list_messages(created_before=cutoff)} == {old_reply, old_inbound, sending}
    assert {m.sid for m in provider.list_messages(created_before=cutoff, direction="outbound-reply")} == {
        old_reply, sending}
    assert [m.sid for m in provider.list_messages(direction="inbound")] == [old_inbound]
    (query,) = [e.query for e in standin.log() if e.path.endswith("/Messages.json") and "DateSent" in e.query][:1]
    assert "DateSent%3C=" in query  # asked of the provider too, with a day to spare
    with pytest.raises(ValueError, match="timezone"):
        provider.list_messages(created_before=datetime.now())


def test_a_failing_message_list_is_unavailable_not_empty(provider: Provider, standin: StandIn) -> None:
    standin.put_message(new_sid("SM"), "r", status="delivered", direction="outbound-reply")
    standin.fail_next("GET", r"/Messages\.json$", status=503)
    with pytest.raises(ProviderUnavailable):
        provider.list_messages()
    assert len(provider.list_messages()) == 1


# -- nothing identifying in logs or errors -----------------------------------------------------------

def test_no_sid_reaches_a_log_line_or_an_error_message(caplog: pytest.LogCaptureFixture, environment: dict[str, str],
                                                       settings: Settings, provider: Provider, standin: StandIn,
                                                       recording: tuple[str, str, bytes]) -> None:
    caplog.set_level(logging.DEBUG)
    recording_sid, call_sid, _ = recording
    live_call, message_sid = new_sid("CA"), new_sid("SM")
    standin.call_started(live_call)
    standin.put_message(message_sid, "", status="queued")
    errors: list[ProviderError] = []

    def attempt(operation) -> None:
        try:
            operation()
        except ProviderError as error:
            errors.append(error)

    standin.fail_next("GET", WAV_PATH, status=500)
    attempt(lambda: provider.fetch_recording(recording_sid))
    attempt(lambda: provider.fetch_recording(recording_sid))
    attempt(provider.list_recordings)
    attempt(provider.list_messages)
    attempt(lambda: provider.delete_call(live_call))
    attempt(lambda: provider.delete_message(message_sid))
    attempt(lambda: provider.delete_recording(recording_sid))
    attempt(lambda: provider.delete_call(call_sid))
    attempt(lambda: provider.fetch_recording(recording_sid))
    with Provider(Settings.from_env({**environment, "TWILIO_AUTH_TOKEN": "0" * 32})) as wrong:
        attempt(lambda: wrong.delete_recording(new_sid("RE")))

    assert [type(e) for e in errors] == [ProviderUnavailable, StillInProgress, StillInProgress, RecordingNotFound,
                                         CredentialsRefused]
    assert any("urllib3" in r.name for r in caplog.records), "the test must see the HTTP library's own log lines"
    written = caplog.text + "\n".join(str(e) for e in errors)
    for sid in (recording_sid, call_sid, live_call, message_sid, settings.twilio_account_sid):
        assert sid not in written

