"""Logs never carry a number or a query string: the redactor, and gunicorn's real access log."""

from __future__ import annotations

import logging
import signal
import sys

import pytest

from dev.processes import free_port, process_environment, start, wait_for_health
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from ivr.core.redaction import RedactingFormatter, redact
from tests.conftest import CALLER_NUMBER, environment_for
from tests.privacy import needles_for_number, scan_lines


@pytest.mark.parametrize("text", [
    "+447700900417", "07700 900417", "07700900417", "+44 (0)7700 900417", "0044 7700 900-417", "(020) 7946 0018",
])
def test_phone_numbers_in_any_spelling_are_redacted(text: str) -> None:
    assert redact(f"caller {text} said") == "caller [redacted] said"


@pytest.mark.parametrize("text", [
    "Listening at: http://127.0.0.1:5000", "2026-11-25 07:17:23,033", "gunicorn 27.0.1", "took 153ms",
    "job tipline-recording-3fa85f6457174562b3fc2c963f66afa6",
])
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_tracebacks_are_redacted_too() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad number {CALLER_NUMBER}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed for %s", (CALLER_NUMBER,), sys.exc_info())
    formatted = formatter.format(record)
    assert CALLER_NUMBER not in formatted and formatted.count("[redacted]") == 2


@pytest.mark.slow
def test_gunicorn_logs_no_query_string_and_no_number(redis_server, tmp_path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_environment({**environment_for(redis_server.url, tmp_path / "var"), "PORT": str(port),
                               "PUBLIC_BASE_URL": base, "WEB_CONCURRENCY": "1"})
    log_path = tmp_path / "gunicorn.log"
    web = start(["gunicorn", "--config", "config/gunicorn.conf.py", "ivr.wsgi:app"], env, log_path)
    try:
        wait_for_health(base)
        twilio = TwilioLike(http_post, base, env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"])
        call = twilio.call(CALLER_NUMBER).dials().presses("1").presses("2")
        call.records(seconds=20)
        twilio.post("/voice/incoming", {"From": CALLER_NUMBER}, signature="forged")
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=20)
    lines = log_path.read_text().splitlines()
    access = [line for line in lines if "POST /voice/" in line]
    assert len(access) >= 5, lines
    assert all("?" not in line and "t=" not in line for line in access)
    assert any(" 403 " in line for line in access)
    assert scan_lines(lines, needles_for_number(CALLER_NUMBER)) == []
    assert not any(call.sid in line for line in lines)
