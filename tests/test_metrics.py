"""GET /metrics: behind its bearer token, in the Prometheus text format, counting every
gunicorn worker's webhooks in one scrape, and never carrying a number, a sid, a reference
or what a tipster said. And deploy/alerts.yml, checked and unit-tested with promtool."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from config.settings import PROJECT_ROOT, Settings, SettingsError
from dev.processes import free_port, process_environment, run_worker_burst, start, wait_for_health, wait_until
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone
from ivr import create_app
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER, PUBLIC_BASE_URL
from tests.privacy import needles_for_number, needles_for_text, scan_lines

METRICS_TOKEN = secrets.token_urlsafe(32)
TEXTER_NUMBER = "+447700900528"
REPORT = "Stolen bicycles are stripped in the garage behind Wellington Terrace on Tuesdays."
REFERENCE = re.compile(r"\b\d{11}\b")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def environment(environment: dict[str, str]) -> dict[str, str]:
    """Every app in this module has a metrics token."""
    return {**environment, "METRICS_TOKEN": METRICS_TOKEN}


def samples_in(text: str) -> Samples:
    """Every sample of a scrape, by name and labels (the parser also proves the format)."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_a_token_setting_there_are_no_metrics(environment, redis_client) -> None:
    app = create_app(Settings.from_env({k: v for k, v in environment.items() if k != "METRICS_TOKEN"}))
    try:
        assert app.test_client().get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 404
    finally:
        app.extensions["tipline"].redis.close()


def test_a_missing_or_wrong_token_is_refused(app) -> None:
    client = app.test_client()
    for headers in ({}, bearer(METRICS_TOKEN[:-1] + "x"), {"Authorization": METRICS_TOKEN},
                    {"Authorization": f"Basic {METRICS_TOKEN}"}):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 401 and b"tipline_" not in answer.data


def test_metrics_count_whole_calls_and_texts_and_carry_nothing_about_them(app, twilio: TwilioLike) -> None:
    client = app.test_client()
    before = samples_in(client.get("/metrics", headers=bearer(METRICS_TOKEN)).get_data(as_text=True))
    calls = [twilio.call(CALLER_NUMBER) for _ in range(2)]
    references = [leave_a_message(call, "1", "2")[0] for call in calls]  # weapons: urgent
    phone = Phone(twilio, TEXTER_NUMBER)
    phone.sends("Hello")
    phone.sends("1")
    phone.sends("3")
    references += REFERENCE.findall(phone.sends(REPORT))
    phone.sends("done")

    answer = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain; version=0.0.4")
    scrape = answer.get_data(as_text=True)
    after = samples_in(scrape)
    grew = {route: value(after, "tipline_webhook_requests_total", route=route, outcome="ok")
            - value(before, "tipline_webhook_requests_total", route=route, outcome="ok")
            for route in ("voice.incoming", "sms.incoming")}
    assert grew == {"voice.incoming": 2, "sms.incoming": 5}
    assert value(after, "tipline_webhook_seconds_count", route="sms.incoming") >= 5
    assert value(after, "tipline_redis_up") == 1
    assert value(after, "tipline_tips_unclaimed", queue="urgent") == 3  # every category chosen was urgent
    assert value(after, "tipline_tips_oldest_unclaimed_seconds", queue="urgent") < 3600
    assert value(after, "tipline_jobs_queued", queue="tipline-recordings-urgent") == 2
    assert value(after, "tipline_redis_persistence_ok") == 1
    assert value(after, "tipline_clock_seconds_since_last_tick") == float("inf")  # no clock in this test
    assert value(after, "tipline_pins_minted_ahead") == 0  # nor PINs minted ahead

    # Labels are names from the code, and the scrape says nothing of who called or what was said.
    labels = {label for (_, pairs) in after for label in pairs}
    assert {name for name, _ in labels} <= {"route", "outcome", "queue", "kind", "le"}
    assert not [v for name, v in labels if name != "le" and re.search(r"\d{3}|[A-Z]{2}[0-9a-f]{8}", v)]
    assert len(references) == 3
    sids = {call.sid for call in calls} | {r.form["RecordingSid"] for call in calls for r in call.recordings}
    needles = (needles_for_number(CALLER_NUMBER) | needles_for_number(TEXTER_NUMBER) | needles_for_text(REPORT)
               | sids | set(phone.message_sids) | set(references))
    assert scan_lines(scrape.splitlines(), needles, where="scrape") == []


@pytest.fixture
def served(environment: dict[str, str], redis_client, tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app under real gunicorn with two workers, counting into var/metrics."""
    port = free_port()
    env = process_environment({**environment, "PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "1",
                               "LOG_LEVEL": "WARNING"})
    master = start([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "ivr.wsgi:app"], env,
                   tmp_path / "gunicorn.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url)
        yield url, master
    finally:
        master.terminate()
        master.wait(timeout=20)


def test_one_scrape_adds_up_every_gunicorn_worker(served, settings: Settings) -> None:
    url, master = served
    # Signed for PUBLIC_BASE_URL, as Twilio signs what it sees, and posted to the served app.
    twilio = TwilioLike(_via(url), PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token)
    first_workers = {child.pid for child in psutil.Process(master.pid).children()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: twilio.call(CALLER_NUMBER).dials(), range(12)))
    # Every worker that answered is replaced (as gunicorn replaces a worker that dies or
    # reaches max_requests): the new ones answer the rest, and the dead ones still count.
    for pid in first_workers:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: len({c.pid for c in psutil.Process(master.pid).children()} - first_workers) == 2,
               what="gunicorn to start two new workers")
    wait_for_health(url)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: twilio.call(CALLER_NUMBER).dials(), range(12)))
    scrape = requests.get(f"{url}/metrics", headers=bearer(METRICS_TOKEN), timeout=10)
    assert scrape.status_code == 200
    after = samples_in(scrape.text)
    assert value(after, "tipline_webhook_requests_total", route="voice.incoming", outcome="ok") == 24
    assert value(after, "tipline_webhook_seconds_count", route="voice.incoming") == 24
    written = {path.name.split("_")[-1] for path in settings.metrics_dir.glob("counter_*.db")}
    assert len(written) >= 2, f"workers of both generations counted (one file each): {sorted(written)}"


def test_workers_and_the_clock_show_in_the_web_scrape(served, settings: Settings, environment, standin) -> None:
    """A real worker counts its jobs into the same directory; the clock's tick is read from Redis."""
    url, _ = served
    twilio = TwilioLike(_via(url), PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token,
                        provider=standin)
    call = twilio.call(CALLER_NUMBER)
    reference, _ = leave_a_message(call, "1", "1", seconds=3)
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-2000:]
    clock = subprocess.run([sys.executable, "-m", "workers.clock", "--once"], cwd=PROJECT_ROOT,
                           env=process_environment(environment), capture_output=True, text=True, timeout=60)
    assert clock.returncode == 0, clock.stderr[-2000:]

    scrape = requests.get(f"{url}/metrics", headers=bearer(METRICS_TOKEN), timeout=10).text
    after = samples_in(scrape)
    assert value(after, "tipline_jobs_total", kind="transcribe_recording", outcome="ok") == 1
    assert value(after, "tipline_transcription_seconds_per_audio_second_count") == 1
    assert value(after, "tipline_jobs_queued", queue="tipline-recordings") == 0
    assert value(after, "tipline_clock_seconds_since_last_tick") < 60
    sids = {call.sid} | {r.form["RecordingSid"] for r in call.recordings}
    needles = needles_for_number(CALLER_NUMBER) | sids | {reference}
    assert scan_lines(scrape.splitlines(), needles, where="scrape") == []


def _via(base_url: str):
    """Post to the served app at `base_url` the request Twilio signed for PUBLIC_BASE_URL."""
    def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        return http_post(base_url + url.removeprefix(PUBLIC_BASE_URL), form, headers)

    return transport


# -- deploy/alerts.yml --------------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus; make system-packages-test) is missing")
@pytest.mark.parametrize("command", [["check", "rules", "deploy/alerts.yml"],
                                     ["test", "rules", "deploy/alerts_test.yml"]])
def test_alert_rules_are_valid_and_fire_when_they_should(command: list[str]) -> None:
    checked = subprocess.run([PROMTOOL, *command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_short_metrics_token_is_refused_by_name(environment) -> None:
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        Settings.from_env({**environment, "METRICS_TOKEN": "guessable"})
    assert Settings.from_env({**environment, "METRICS_TOKEN": "  "}).metrics_token is None


def test_gunicorn_s_config_sets_the_metrics_directory_before_prometheus_client_loads() -> None:
    """config/gunicorn.conf.py imports `ivr.core.metrics_dir`, and so the `ivr.core` package:
    if that package loads prometheus-client, the master counts in memory and its child_exit
    hook fails on every worker it reaps (an import in ivr/core/__init__.py once did this)."""
    probe = ("import sys; import config.settings, ivr.core.metrics_dir; "
             "print('prometheus_client' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "False"
