"""Logging that cannot leak a phone number.

The first line of defence is that no code logs request data at all (the edge logs
nothing of a request, gunicorn's access log has no query strings). This formatter is
the second: anything in a log message or traceback that looks like a phone number
(7 or more digits, with the separators people write) is replaced before it is written.
What only looks like one is left alone, so the logs stay useful: a port after its host and
gunicorn's pid after it (`127.0.0.1:43619 (17592)`), a pid that says so, a quantity with its
unit (`1234567 bytes`), a date. Phone numbers have a leading 0 or +; ports and pids do not.
"""

from __future__ import annotations

import logging
import logging.config
import re
from types import TracebackType
from typing import Any

REDACTED = "[redacted]"
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
# 7+ digits, optionally led by + or 00, with the spaces, hyphens and brackets people write.
# Dots are not separators, so IP addresses and versions stay readable.
PHONE_LIKE = re.compile(r"(?<![\w.])(?:\+|00)?\(?\d(?:[ ()\-]{0,2}\d){6,}(?![\w.])")

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


# Dates look like runs of digits with hyphens; they are not numbers to hide.
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?$")


# A port after an IPv4 address, localhost or an IPv6 address in brackets (`127.0.0.1:43619`):
# gunicorn writes the port and then its pid (`127.0.0.1:43619 (17592)`), which together look
# like a number with a bracketed area code. Ports have no leading zero; phone numbers do.
HOST_BEFORE_PORT = re.compile(r"(?:\b\d{1,3}(?:\.\d{1,3}){3}|\blocalhost|\])[:]$")
PORT = re.compile(r"[1-9]\d{0,4}(?!\d)")


# A process id (up to 7 digits on Linux) that says it is one: `pid: 1234567`, `PID 1234567`, `(pid:1234567)`.
PID_BEFORE = re.compile(r"\bpid[:=]? ?$", re.IGNORECASE)
# gunicorn's `Listening at: http://127.0.0.1:43619 (1234567)`: the pid in brackets after the port.
PID_AFTER_PORT = re.compile(r" \([1-9]\d{0,6}\)?")
# A quantity with its unit: `1234567 bytes`, `15000 ms`, `86400 seconds`.
UNIT_AFTER = re.compile(r" ?(?:bytes|ms|seconds)\b")


def _replacement(match: re.Match[str]) -> str:
    text, before, after = match.group(0), match.string[:match.start()], match.string[match.end():]
    if DATE_LIKE.match(text):
        return text
    pid = len(text) <= 7 and not text.startswith("0") and PID_BEFORE.search(before)
    if text.isdigit() and (pid or UNIT_AFTER.match(after)):
        return text
    port = PORT.match(text)
    if port and HOST_BEFORE_PORT.search(before):
        rest = text[port.end():]
        return port.group(0) + (rest if PID_AFTER_PORT.fullmatch(rest) else redact(rest))
    return REDACTED


def redact(text: str) -> str:
    return PHONE_LIKE.sub(_replacement, text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose message, traceback and stack text pass through `redact`."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = redact(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: ExcInfo) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig that sends everything, gunicorn's loggers included, through the redactor."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"redacting": {"()": RedactingFormatter, "format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "redacting", "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # werkzeug's development server logs full request lines, query strings included.
            "werkzeug": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
