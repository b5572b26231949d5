"""`tipline health` and /console/health: against the test Redis and the provider stand-in."""

from __future__ import annotations

import json
import time

import pytest
from rq import Queue, Worker

from dev.processes import free_port
from ivr import cli
from ivr.core import keys
from tests.console_people import ConsoleClient, enrolled


@pytest.fixture
def tipline(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """`tipline ...` as an operator runs it, with this test's environment."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return lambda *argv: cli.main(list(argv))


@pytest.fixture
def alive(redis_client):
    """A registered RQ worker (its heartbeat key) and a fresh clock tick."""
    worker = Worker([Queue(keys.QUEUE_MAINTENANCE, connection=redis_client)], connection=redis_client,
                    name="health-test-worker")
    worker.register_birth()
    redis_client.set(keys.CLOCK_LAST_TICK, int(time.time()))
    yield worker
    worker.register_death()


def checks(output: str) -> dict[str, dict]:
    return {check["name"]: check for check in json.loads(output)["checks"]}


def test_no_worker_and_no_clock_fail_naming_both(tipline, redis_client, capsys) -> None:
    assert tipline("health") == 1
    out = capsys.readouterr().out
    assert "FAIL  workers" in out and "FAIL  clock" in out and "overall: fail" in out


def test_a_worker_and_a_fresh_clock_are_healthy(tipline, alive, capsys) -> None:
    assert tipline("health", "--json") == 0
    found = checks(capsys.readouterr().out)
    assert found["workers"]["status"] == "ok" and found["clock"]["status"] == "ok"
    assert found["worker health-test-worker"]["status"] == "ok"
    assert found["provider"]["status"] == "ok" and found["redis"]["status"] == "ok"
    assert found["jobs failed"]["status"] == "ok"
    assert found["recordings kept for a person"]["value"].startswith("0")


def test_an_old_urgent_tip_fails_with_its_age_to_the_hour(tipline, alive, redis_client, capsys) -> None:
    two_hours_ago_ms = int((time.time() - 2 * 3600) // 3600 * 3600 * 1000)
    redis_client.xadd(keys.HANDLER_QUEUE_URGENT, {"tip": "x"}, id=f"{two_hours_ago_ms}-0")
    assert tipline("health", "--json") == 1
    urgent = checks(capsys.readouterr().out)["tips urgent"]
    assert urgent["status"] == "fail" and "1 unclaimed" in urgent["value"] and "to the hour" in urgent["value"]


def test_the_provider_failing_is_a_failure(tipline, alive, standin, capsys) -> None:
    standin.fail_next("GET", r"/Recordings\.json$", status=503)
    assert tipline("health", "--json") == 1
    provider = checks(capsys.readouterr().out)["provider"]
    assert provider["status"] == "fail" and provider["action"]


def test_redis_unreachable_exits_2_and_says_so(tipline, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert tipline("health") == 2
    assert "Redis cannot be reached" in capsys.readouterr().out


def test_the_console_page_for_supervisors_not_handlers(app, alive) -> None:
    boss = ConsoleClient(app, enrolled(app, "jo", "supervisor"))
    assert boss.signs_in().status_code == 302
    page = boss.get("/console/health")
    assert page.status_code == 200
    text = boss.text()
    for name in ("workers", "clock", "tips urgent", "jobs failed", "provider", "recordings kept for a person"):
        assert name in text
    assert 'href="/console/health"' in text
    handler = ConsoleClient(app, enrolled(app, "sam", "handler"))
    assert handler.signs_in().status_code == 302
    assert handler.get("/console/health").status_code == 403


def test_an_empty_pin_stock_warns_and_a_refilled_one_is_counted(tipline, alive, core, capsys) -> None:
    assert tipline("health", "--json") == 0  # a warning, not a failure
    stock = checks(capsys.readouterr().out)["PINs minted ahead"]
    assert stock["status"] == "warn" and "clock" in stock["action"]

    core.pin_pool.refill(stock=5, at_most=5)

    assert tipline("health", "--json") == 0
    stock = checks(capsys.readouterr().out)["PINs minted ahead"]
    assert (stock["status"], stock["value"]) == ("ok", "5")
