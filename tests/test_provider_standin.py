"""The provider stand-in itself: Twilio's shapes where twilio-python reads them, and the
faults and holds other tests rely on."""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from twilio.base.page import Page

from config.settings import Settings
from dev.phone_audio import silence
from dev.processes import free_port, process_environment, start, wait_until
from dev.standin.client import StandIn
from dev.standin.server import StandInServer, create_standin_app
from dev.twilio.calls import new_sid
from ivr.core.provider import Provider, ProviderError, ProviderUnavailable, RecordingNotFound


def get(url: str, credentials: tuple[str, str] | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url)
    if credentials:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def test_the_api_wants_the_accounts_credentials_and_answers_like_twilio(settings: Settings, standin: StandIn) -> None:
    url = f"{standin.url}/2010-04-01/Accounts/{settings.twilio_account_sid}/Recordings.json"
    for credentials in (None, (settings.twilio_account_sid, "0" * 32), (new_sid("AC"), settings.twilio_auth_token)):
        status, headers, body = get(url, credentials)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert body["code"] == 20003 and body["status"] == 401 and body["more_info"].endswith("/20003")
    status, _, body = get(url, (settings.twilio_account_sid, settings.twilio_auth_token))
    assert status == 200


def test_a_list_page_has_one_record_key_beside_the_paging_keys_twilio_python_reads(settings: Settings,
                                                                                    standin: StandIn) -> None:
    for _ in range(3):
        standin.put_recording(new_sid("RE"), new_sid("CA"), silence(1), 1)
    url = f"{standin.url}/2010-04-01/Accounts/{settings.twilio_account_sid}/Recordings.json?PageSize=2"
    _, _, page = get(url, (settings.twilio_account_sid, settings.twilio_auth_token))
    assert set(page) - Page.META_KEYS == {"recordings"}
    assert len(page["recordings"]) == 2 and page["next_page_uri"].startswith("/2010-04-01/Accounts/")
    record = page["recordings"][0]
    assert record["date_created"].endswith("+0000") and record["status"] == "completed" and record["duration"] == "1"


def test_a_held_request_waits_until_released(settings: Settings, standin: StandIn) -> None:
    recording_sid = new_sid("RE")
    standin.put_recording(recording_sid, None, silence(1), 1)
    standin.hold("GET", r"\.wav$")
    fetched: list[bytes] = []
    with Provider(settings, timeout_seconds=30) as provider:
        fetching = threading.Thread(target=lambda: fetched.append(provider.fetch_recording(recording_sid)))
        fetching.start()
        standin.wait_until_held(1)
        assert fetched == [] and standin.held() == 1
        assert [entry.method for entry in standin.log()] == ["ADMIN", "ADMIN"]  # put, hold: the GET waits
        assert standin.release() == 1
        fetching.join(timeout=10)
    assert fetched == [silence(1)] and standin.held() == 0


def test_a_request_held_after_it_took_effect_has_done_its_work(settings: Settings, standin: StandIn) -> None:
    recording_sid = new_sid("RE")
    standin.put_recording(recording_sid, None, silence(1), 1)
    standin.hold("DELETE", r"/Recordings/", after=True)
    with Provider(settings, timeout_seconds=30) as provider:
        deleting = threading.Thread(target=provider.delete_recording, args=(recording_sid,))
        deleting.start()
        standin.wait_until_held(1)
        assert standin.recordings() == []  # deleted, though the answer has not left yet
        standin.release()
        deleting.join(timeout=10)
        with pytest.raises(RecordingNotFound):
            provider.fetch_recording(recording_sid)


def test_admin_routes_answer_loopback_clients_only(settings: Settings) -> None:
    app = create_standin_app(settings.twilio_account_sid, settings.twilio_auth_token)
    client = app.test_client()
    assert client.get("/_standin/health", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    assert client.get("/_standin/health", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_a_stopped_server_lets_held_requests_go(environment: dict[str, str], settings: Settings) -> None:
    server = StandInServer(settings.twilio_account_sid, settings.twilio_auth_token).start()
    admin = StandIn(server.url)
    admin.hold("GET", r"\.wav$")
    outcome: list[type[ProviderError]] = []
    with Provider(Settings.from_env({**environment, "TWILIO_API_BASE": server.url}), 30) as provider:
        fetching = threading.Thread(target=_fetch_noting_the_error, args=(provider, outcome))
        fetching.start()
        admin.wait_until_held(1)
        server.stop()
        fetching.join(timeout=10)
    assert not fetching.is_alive() and outcome in ([RecordingNotFound], [ProviderUnavailable])


@pytest.mark.slow
def test_the_process_serves_the_port_of_twilio_api_base_and_stops_on_sigterm(environment: dict[str, str],
                                                                             tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    process = start([sys.executable, "-m", "dev.standin"],
                    process_environment({**environment, "TWILIO_API_BASE": url}), tmp_path / "standin.log")
    try:
        wait_until(lambda: _answers(StandIn(url)), timeout=15, what="the stand-in process")
        StandIn(url).call_started(new_sid("CA"))
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    output = (tmp_path / "standin.log").read_text()
    assert code == 0 and "Traceback" not in output and url in output
    assert "/calls/" not in output  # no request lines: paths carry provider sids


def _answers(standin: StandIn) -> bool:
    try:
        standin.ping()
        return True
    except ConnectionError:
        return False


def _fetch_noting_the_error(provider: Provider, outcome: list[type[ProviderError]]) -> None:
    try:
        provider.fetch_recording(new_sid("RE"))
    except ProviderError as error:
        outcome.append(type(error))
