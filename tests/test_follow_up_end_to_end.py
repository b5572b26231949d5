"""Issue 11's whole loop through real processes: a handler's question reaches a tipster who
calls back, and one who texts back, with their reference, and each answer reaches the
handler's page.

Everything runs as `make run` runs it (dev/run.py: gunicorn, the RQ worker, the clock, a
local Redis and the provider stand-in, each its own process); the handler works in Debian's
chromium; the tipster's phone is the simulator over HTTP, signing every request as Twilio
does; the answer by phone is real speech through the worker's real recogniser. Then every
process is stopped and the privacy scan reads Redis, the log and every file under var/.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
import redis

from config.settings import PROJECT_ROOT, Settings
from dev.phone_audio import speak
from dev.processes import free_port, process_environment, start, wait_for_health, wait_until
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone
from ivr.core import build_core
from ivr.core.prompts import CALLING_BACK_KEY
from ivr.core.tips import READY
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from tests.test_console_browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api", reason="make test installs playwright")

TIPSTER = "+447700900611"
CALLER = "+447700900612"  # the same tipster, calling back from another phone
REPORT = "Two men sell cocaine from a grey Golf outside the chip shop on Mare Street most evenings."
CODES = re.compile(r"(\d{11})\D+(\d{6})\b")
FIRST_QUESTION = "Which door of the house do they use?"
SPOKEN_ANSWER = "They use the back door of the blue house on Station Road."
SECOND_QUESTION = "What colour is the car?"
TEXTED_ANSWER = "It is a grey Golf with a dent in the back."


def handler_signs_in(page, base: str, env: dict[str, str]) -> None:
    """An account made from the CLI, enrolled and signed in in the browser, as a new handler would."""
    tipline = str(Path(sys.executable).parent / "tipline")
    made = subprocess.run([tipline, "handler", "add", "sam"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip().splitlines()[-1]
    page.goto(link)
    totp = pyotp.TOTP(page.inner_text("code.secret"))
    password = "plums orbit quietly 42"
    page.fill("input[name=password]", password)
    page.fill("input[name=password_again]", password)
    page.fill("input[name=code]", totp.at(page.evaluate("Date.now() / 1000") - 30))
    page.click("button:has-text('Finish')")
    page.wait_for_url(re.compile(r"/console/login$"))
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", password)
    page.fill("input[name=code]", totp.now())
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/console/$"))
    assert page.url.startswith(base)


def asks(page, reference: str, question: str) -> None:
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
    assert question in page.inner_text("main") and "question waiting" in page.inner_text("main")


def test_a_handlers_question_reaches_the_tipster_by_phone_and_by_text_and_both_answers_come_back(
        tmp_path: Path) -> None:
    port, var = free_port(), tmp_path / "var"
    env = process_environment({"PORT": str(port), "TIPLINE_VAR_DIR": str(var)})
    log_path = tmp_path / "make-run.log"
    honcho = start([sys.executable, "-m", "dev.run"], env, log_path)
    base = f"http://127.0.0.1:{port}"
    calls, phones = [], []
    try:
        assert wait_for_health(base) == {"status": "ok", "redis": True}
        settings = Settings.from_env(env)
        standin_url = re.search(r"provider stand-in \((http://127\.0\.0\.1:\d+)\)", log_path.read_text()).group(1)
        twilio = TwilioLike(http_post, base, settings.twilio_account_sid, settings.twilio_auth_token,
                            provider=StandIn(standin_url))

        phone = Phone(twilio, TIPSTER)
        phones.append(phone)
        codes = CODES.search(phone.sends(REPORT))
        assert codes, "no reference and PIN in the first reply"
        reference, pin = codes.groups()
        phone.sends("1")
        phone.sends("DONE")

        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            sam = browser.new_context().new_page()
            handler_signs_in(sam, base, env)
            sam.click("#claim-next")
            sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
            asks(sam, reference, FIRST_QUESTION)

            # By phone: 9 at the topic menu, the reference, the PIN; the question; 2, and the answer spoken.
            call = twilio.call(CALLER)
            calls.append(call)
            call.dials().presses("1").presses(CALLING_BACK_KEY).presses(reference + "#").presses(pin + "#")
            assert FIRST_QUESTION in call.heard_since_last_step()
            call.presses("2").records(audio=speak(SPOKEN_ANSWER))
            assert call.ended

            with redis.Redis.from_url(settings.redis_url) as local_redis:
                tips = build_core(settings).tips  # the app's own vault: master and period keys
                wait_until(lambda: tips.get(reference).parts[-1].status == READY, timeout=90,
                           what="the spoken answer through the worker")
            sam.reload()
            answer = sam.inner_text("#question-1 .answer")
            assert {"blue", "house", "station"} <= set(re.findall(r"[a-z]+", answer.lower()))
            assert "answered" in sam.inner_text("#question-1 .state")

            # By text: REF and PIN get the next question; the next text answers it.
            asks(sam, reference, SECOND_QUESTION)
            texter = Phone(twilio, TIPSTER)
            phones.append(texter)
            assert SECOND_QUESTION in texter.sends(f"REF {reference} PIN {pin}")
            assert "delete this conversation" in texter.sends(TEXTED_ANSWER).lower()
            sam.reload()
            assert TEXTED_ANSWER in sam.inner_text("#question-2 .answer")
            browser.close()

        with redis.Redis.from_url(settings.redis_url) as local_redis:
            wait_until(lambda: deleted_at_provider(twilio, calls, phones), timeout=60,
                       what="the call, its recording and the texts deleted at the provider")
            sids = provider_sids(calls, phones)
            needles = needles_for_number(TIPSTER) | needles_for_number(CALLER) | sids
            assert scan_redis(local_redis, needles) == []
    finally:
        honcho.send_signal(signal.SIGINT)
        honcho.wait(timeout=30)
    needles = needles_for_number(TIPSTER) | needles_for_number(CALLER) | provider_sids(calls, phones)
    assert scan_lines(log_path.read_text().splitlines(), needles) == []
    assert scan_files(var, needles) == []


def provider_sids(calls, phones) -> set[str]:
    return ({call.sid for call in calls} | {r.form["RecordingSid"] for call in calls for r in call.recordings}
            | {sent.form["MessageSid"] for phone in phones for sent in phone.sent})


def deleted_at_provider(twilio: TwilioLike, calls, phones) -> bool:
    """Nothing of these calls and texts is left at the provider (the stand-in's own records)."""
    standin = twilio.provider
    held = {r.sid for r in standin.recordings()} | set(standin.calls()) | set(standin.messages())
    return not provider_sids(calls, phones) & held
