"""Fixtures: a real redis-server per test session, the app, and a Twilio-like caller.

The test Redis listens on a free loopback port (never 6379, which another Redis may
hold), keeps an append-only file in the session's temp folder so the privacy scan reads
what Redis wrote to disk, and is flushed around each test. A test that scans that file
asks for `redis_files`, which starts the AOF afresh before the test writes anything.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import redis

from config.settings import Settings
from dev.redis_server import RedisServer
from dev.standin.client import StandIn
from dev.standin.server import StandInServer
from dev.twilio.calls import Call, TwilioLike
from ivr import create_app
from ivr.core.redaction import RedactingFormatter
from tests.console_people import enrolled
from tests.privacy import start_a_fresh_aof

if TYPE_CHECKING:
    from workers.speech import Recogniser

PUBLIC_BASE_URL = "https://tipline.example.org"
# A number from Ofcom's drama range whose tail cannot collide with references or times.
CALLER_NUMBER = "+447700900417"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))  # a loopback port, AOF fsynced on every write
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    if redis_server.process is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    if redis_server.process is None:  # a test stopped it: bring it back for the next one
        redis_server.start()
    client.flushall()
    client.close()


@pytest.fixture
def redis_files(redis_client: redis.Redis, redis_server: RedisServer) -> Path:
    """The Redis data folder, its append-only file holding this test's writes and nothing older.

    The AOF is rewritten here, before the test writes, and never before a scan: a rewrite
    compacts away what was written and deleted again, which a privacy scan must see.
    """
    start_a_fresh_aof(redis_client)
    return redis_server.data_dir


@pytest.fixture(scope="session")
def speech_recogniser(tmp_path_factory: pytest.TempPathFactory) -> Recogniser:
    """The worker's own recogniser (workers.speech, default settings), loaded once per session.

    A worker's stored transcript must equal what this hears in the same recording: a
    pipeline that dropped or cut the audio would store something else.
    """
    from workers.speech import load_recogniser

    return load_recogniser(Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path_factory.mktemp("speech") / "var")}))


def environment_for(redis_url: str, var_dir: Path) -> dict[str, str]:
    """The environment a test process (app, worker, gunicorn) runs with.

    `var_dir` is created, and the processes' temporary files go under it (TMPDIR), so the
    privacy scan of var/ reads a folder that exists and holds what they wrote.
    """
    (var_dir / "tmp").mkdir(parents=True, exist_ok=True)
    (var_dir / "period-keys").mkdir(mode=0o700, exist_ok=True)  # production wants it there (a mounted volume)
    return {
        "TIPLINE_ENV": "development",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "REDIS_URL": redis_url,
        "TIPLINE_VAR_DIR": str(var_dir),
        "PERIOD_KEYS_DIR": str(var_dir / "period-keys"),
        "TMPDIR": str(var_dir / "tmp"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "VAULT_KEYS": "test1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AUDIT_KEY": secrets.token_urlsafe(48),
        "TWILIO_ACCOUNT_SID": STANDIN_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": STANDIN_AUTH_TOKEN,
        "TWILIO_API_BASE": standin_url(),
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def environment(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    return environment_for(redis_server.url, tmp_path / "var")


@pytest.fixture
def settings(environment: dict[str, str]) -> Settings:
    return Settings.from_env(environment)


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis):
    app = create_app(settings)
    yield app
    app.extensions["tipline"].redis.close()


def twilio_for(app, settings: Settings, provider: StandIn | None = None) -> TwilioLike:
    """Twilio's side, talking to `app` through Flask's test client (one per request, so
    threads may share it); with a provider, its records go to the stand-in."""
    def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = app.test_client().post(path, data=form, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    return TwilioLike(transport, PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token,
                      provider=provider)


@pytest.fixture
def twilio(app, settings: Settings, standin: StandIn) -> TwilioLike:
    """Twilio's side, talking to the app through Flask's test client; its records go to the stand-in."""
    return twilio_for(app, settings, standin)


@pytest.fixture
def caller(twilio: TwilioLike) -> Call:
    """A caller with a distinctive number, not yet dialled."""
    return twilio.call(CALLER_NUMBER)


class LogLines(logging.Handler):
    """Every log line of the test, formatted as production formats it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(RedactingFormatter("%(levelname)s [%(name)s] %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


# -- The provider stand-in: Twilio's REST API on loopback (dev/standin/server.py) -------
# One stand-in per session, started before any test and reset before each one. Every test
# environment (environment_for) carries its URL as TWILIO_API_BASE and the session's
# credentials, so the app, workers and gunicorn started from it all reach this stand-in.

STANDIN_ACCOUNT_SID = "AC" + secrets.token_hex(16)
STANDIN_AUTH_TOKEN = secrets.token_hex(16)
_running_standin: list[StandInServer] = []


def standin_url() -> str:
    """The session stand-in's URL (the TWILIO_API_BASE of every test environment)."""
    if not _running_standin:
        raise RuntimeError("the provider stand-in is not running: the session fixture provider_standin starts it")
    return _running_standin[0].url


@pytest.fixture(scope="session", autouse=True)
def provider_standin() -> Iterator[StandInServer]:
    with StandInServer(STANDIN_ACCOUNT_SID, STANDIN_AUTH_TOKEN) as server:
        _running_standin.append(server)
        yield server
        _running_standin.clear()


@pytest.fixture(autouse=True)
def _fresh_standin(provider_standin: StandInServer) -> None:
    provider_standin.state.reset()


@pytest.fixture
def standin(provider_standin: StandInServer) -> StandIn:
    """The stand-in's admin client: arrange recordings, faults and holds; read its log."""
    return StandIn(provider_standin.url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line for the hostile-input and fault tests (tests/hostile.py)."""
    from tests.hostile import summary_lines

    lines = summary_lines()
    if lines:
        terminalreporter.section("hostile input and faults")
        for line in lines:
            terminalreporter.write_line(line)


# -- the app's long-lived objects, as tests reach them -------------------------------------------

@pytest.fixture
def core(app):
    """The app's core (ivr/core/__init__.py): what every door of this app shares."""
    return app.extensions["tipline"]


@pytest.fixture
def console(app):
    """The console's own objects (casework, catalogue, accounts, audit)."""
    return app.extensions["console"]


@pytest.fixture
def casework(console):
    return console.casework


@pytest.fixture
def sam(app):
    """A handler, enrolled and ready to sign in."""
    return enrolled(app, "sam", "handler")
