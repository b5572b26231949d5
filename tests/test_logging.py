"""Logs never carry a number or a query string: the redactor, and gunicorn's real access log."""

from __future__ import annotations

import logging
import re
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


# Lines as gunicorn, the RQ worker and the clock write them (from `make run`'s log), a few longer.
REAL_LINES = [
    "2026-11-30 18:16:38,376 INFO [gunicorn.error] Starting gunicorn 27.0.1",
    "2026-11-30 18:16:38,377 INFO [gunicorn.error] Listening at: http://127.0.0.1:43619 (17592)",
    "2026-11-30 18:16:38,377 INFO [gunicorn.error] Listening at: http://[::1]:8000 (1234567)",
    "2026-11-30 18:16:38,384 INFO [gunicorn.error] Booting worker with pid: 17762",
    "2026-11-30 18:16:41,020 INFO [gunicorn.error] Worker (pid:17762) was sent SIGTERM!",
    "2026-11-30 18:16:38,532 INFO [gunicorn.error] Control socket listening at /srv/tipline/var/gunicorn.ctl",
    "2026-11-30 18:16:39,291 INFO [gunicorn.access] GET /healthz 200, 29 bytes, 10 ms",
    "2026-11-30 18:16:40,039 INFO [gunicorn.access] POST /voice/incoming 200, 1234567 bytes, 15000 ms",
    "2026-11-30 18:16:39,600 INFO [workers.speech.faster_whisper_engine] speech model loaded in 0.53 s",
    "2026-11-30 18:16:39,607 INFO [rq.worker] Worker 8d572b12b1ba4b36ad6af7d6d20a10d4: started with PID 17603, "
    "version 2.12.0",
    "2026-11-30 18:16:39,620 INFO [rq.scheduler] Scheduler for tipline-messages started with PID 17773",
    "2026-11-30 18:16:41,647 INFO [rq.worker] tipline-recordings: Job OK (tipline-recording-3fa85f6457174562b3fc2c9)",
    "2026-11-30 18:16:41,647 INFO [rq.worker] Result is kept for 500 seconds",
    "2026-11-30 18:16:38,255 INFO [workers.retention_daily] retention: deleted=0 open-past-retention=12",
    "provider answered HTTP 200 after 0.53 s, 1234 bytes",
]


@pytest.mark.parametrize("line", REAL_LINES)
def test_ports_pids_status_codes_byte_counts_and_durations_are_left_alone(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize("number", sorted(needle for needle in needles_for_number(CALLER_NUMBER)
                                          if not needle.isalnum() or len(needle) >= 7 and needle.isdigit()
                                          or needle.startswith("+")))
@pytest.mark.parametrize("where", ["caller {} rang", "http://127.0.0.1:43619/x?From={}", "localhost:{}",
                                   "127.0.0.1:{} (17592)", "pid: {}"])
def test_a_number_next_to_a_port_or_pid_is_still_redacted(number: str, where: str) -> None:
    line = where.format(number)
    assert scan_lines([redact(line)], {number}) == [], redact(line)


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
    assert any(" 403, " in line for line in access)
    # Ports, pids, status codes, byte counts and durations are not phone numbers.
    # (At DEBUG gunicorn prints its settings, `  websocket_max_message_size: 16777216`: that stays redacted.)
    assert [line for line in lines if "[redacted]" in line and not line.startswith("  ")] == []
    assert any(f"Listening at: {base} (" in line for line in lines)
    assert any(re.search(r" 200, \d+ bytes, \d+ ms$", line) for line in access)
    assert scan_lines(lines, needles_for_number(CALLER_NUMBER)) == []
    assert not any(call.sid in line for line in lines)
