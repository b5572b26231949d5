"""Logging that cannot leak a phone number.

The first line of defence is that no code logs request data at all (the edge logs
nothing of a request, gunicorn's access log has no query strings). This formatter is
the second: anything in a log message or traceback that looks like a phone number
(7 or more digits, with the separators people write) is replaced before it is written.
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


def _replacement(match: re.Match[str]) -> str:
    return match.group(0) if DATE_LIKE.match(match.group(0)) else REDACTED


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
