"""Sign-in limits and one-time codes hold when requests arrive all at once (promise 7).

The app runs under gunicorn as a real process (32 request slots: 2 workers x 16 threads,
so a burst of 30 is in flight together), behind a pretend nginx: CONSOLE_TRUSTED_PROXIES=1
and each request's X-Forwarded-For says which address it comes from. Each browser opens
the sign-in page with its own cookie jar (its own session and CSRF token), then they all
wait at a barrier and POST together.

How many argon2 checks a burst cost is read from outside, without touching our code: the
gunicorn workers' CPU time during the burst, against one check's CPU cost measured here.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import requests
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from dev.processes import free_port, process_environment, start, wait_for_health
from ivr.core.sign_in_limits import ADDRESS_FAILURES_ALLOWED
from tests.conftest import environment_for
from tests.console_people import CSRF_META, Person, enrolled

pytestmark = pytest.mark.slow

BURST = 30
ATTACKER = "203.0.113.66"
COOKIE = "tipline_console"


@dataclass(frozen=True)
class Served:
    url: str
    master: subprocess.Popen

    def worker_cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) of gunicorn's workers so far."""
        return sum(sum(worker.cpu_times()[:2]) for worker in psutil.Process(self.master.pid).children())


@pytest.fixture(scope="module")
def served_environment(redis_server, provider_standin, tmp_path_factory) -> dict[str, str]:
    return {**environment_for(redis_server.url, tmp_path_factory.mktemp("var")), "CONSOLE_TRUSTED_PROXIES": "1"}


@pytest.fixture
def environment(served_environment: dict[str, str]) -> dict[str, str]:
    """The in-process app (which enrols people) shares the served app's secrets."""
    return served_environment


@pytest.fixture(scope="module")
def served(served_environment: dict[str, str], tmp_path_factory) -> Iterator[Served]:
    port = free_port()
    env = process_environment({**served_environment, "PORT": str(port), "WEB_CONCURRENCY": "2",
                               "WEB_THREADS": "16", "LOG_LEVEL": "WARNING"})
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    master = start([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "ivr.wsgi:app"], env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url)
        yield Served(url, master)
    finally:
        master.terminate()
        master.wait(timeout=20)


class Browser:
    """One browser at one address: its own cookie jar, session and CSRF token."""

    def __init__(self, site: Served, address: str) -> None:
        self.site = site
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address  # what nginx would add
        self.cookie = ""
        self.csrf = ""

    def opens_sign_in(self) -> Browser:
        page = self.http.get(f"{self.site.url}/console/login", timeout=30)
        # The cookie is Secure and this is plain http on loopback: carry it by hand, as a
        # browser does for a trustworthy origin.
        self.cookie = page.cookies[COOKIE]
        self.csrf = CSRF_META.search(page.text).group(1)
        return self

    def signs_in(self, name: str, password: str, code: str) -> requests.Response:
        return self.http.post(f"{self.site.url}/console/login", allow_redirects=False, timeout=60,
                              headers={"Cookie": f"{COOKIE}={self.cookie}"},
                              data={"csrf_token": self.csrf, "name": name, "password": password, "code": code})


def all_at_once(browsers: list[Browser], name: str, password: str, code: str) -> list[requests.Response]:
    """Every browser POSTs the sign-in form at the same moment; their answers, in order."""
    barrier = threading.Barrier(len(browsers))
    answers: list[requests.Response | None] = [None] * len(browsers)

    def sign_in(index: int) -> None:
        barrier.wait(timeout=30)
        answers[index] = browsers[index].signs_in(name, password, code)

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers), "a sign-in got no answer"
    return answers


def outcomes(answers: list[requests.Response]) -> Counter:
    """How many were let in (302), refused after a check (401) and refused unchecked (429)."""
    return Counter(answer.status_code for answer in answers)


def argon2_check_cpu_seconds() -> float:
    """One wrong-password check's CPU time here (the served app uses the same parameters)."""
    hasher = PasswordHasher()
    stored = hasher.hash("the right password")
    began = time.process_time()
    for _ in range(3):
        with pytest.raises(VerificationError):
            hasher.verify(stored, "a wrong password")
    return (time.process_time() - began) / 3


def test_a_burst_of_wrong_passwords_is_checked_no_more_than_the_limit(served: Served, app) -> None:
    sam = enrolled(app, "sam")
    browsers = [Browser(served, ATTACKER).opens_sign_in() for _ in range(BURST)]
    one_check = argon2_check_cpu_seconds()
    cpu_before = served.worker_cpu_seconds()
    answers = all_at_once(browsers, "sam", "not the password at all", sam.code())
    burst_cpu = served.worker_cpu_seconds() - cpu_before

    assert outcomes(answers) == {401: ADDRESS_FAILURES_ALLOWED, 429: BURST - ADDRESS_FAILURES_ALLOWED}
    # 30 requests' own work is well under 5 checks' worth; 30 checks would be about 30.
    assert burst_cpu < (ADDRESS_FAILURES_ALLOWED + 5) * one_check, \
        f"the burst cost {burst_cpu:.2f} s of CPU: about {burst_cpu / one_check:.0f} argon2 checks"
    refused = Browser(served, ATTACKER).opens_sign_in().signs_in("sam", sam.password, sam.code())
    assert refused.status_code == 429 and "Too many failed sign-ins from your network address" in refused.text
    assert Browser(served, "198.51.100.20").opens_sign_in().signs_in("sam", sam.password,
                                                                     sam.code()).status_code == 302
    audit = app.extensions["console"].audit
    assert [e.action for e in audit.entries(count=50)].count("sign_in_failed") == ADDRESS_FAILURES_ALLOWED


def test_a_burst_with_the_right_password_after_four_failures_lets_one_in(served: Served, app) -> None:
    sam = enrolled(app, "sam")
    for _ in range(ADDRESS_FAILURES_ALLOWED - 1):
        assert Browser(served, ATTACKER).opens_sign_in().signs_in("sam", "wrong wrong wrong",
                                                                  "000000").status_code == 401
    browsers = [Browser(served, ATTACKER).opens_sign_in() for _ in range(BURST)]
    seen = outcomes(all_at_once(browsers, "sam", sam.password, sam.code()))
    # One try was left: it lets sam in and gives the address its try back, which at most
    # one more try can use (and find the code spent). Every other one is refused unchecked.
    assert seen[302] == 1 and seen[401] <= 1 and seen[429] == BURST - 1 - seen[401], seen


def test_one_code_used_at_once_from_eight_places_signs_in_once(served: Served, app) -> None:
    sam: Person = enrolled(app, "sam")
    browsers = [Browser(served, f"198.51.100.{30 + i}").opens_sign_in() for i in range(8)]
    seen = outcomes(all_at_once(browsers, "sam", sam.password, sam.code()))
    assert seen == {302: 1, 401: 7}, seen
