"""How the fuzz tests run: hypothesis profiles, the per-route tally, and the promises they check.

Profiles (pick one with `HYPOTHESIS_PROFILE`):
- `ci` (the default, what `make test` runs): derandomized, so a failure found in CI
  repeats on every run and on every machine; sized so the fuzz tests together send a
  little over 10,000 cases in well under a minute.
- `long`: twenty times the cases and a fresh random seed each run, for a night's run
  on a workstation: `HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_fuzz_*.py`.

Neither keeps a hypothesis database: `ci` needs none to repeat a failure, and `long`
prints the `@reproduce_failure` blob of anything it finds. What hypothesis still writes
(its cache of the constants in our source) goes under the session's temp folder, not into
`.hypothesis/` in the checkout: the fuzz modules use `hypothesis_files_in_tmp`.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from types import TracebackType
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.hostile import record_fuzz

settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True,
    # No "explain" phase: it traces every line a failing case runs, which multiplies a
    # failing run's time by ten, and the shrunk case says enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    # Hostile values are big and slow on purpose; these checks would only nag about it.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.filter_too_much],
)
settings.register_profile("long", settings.get_profile("ci"), derandomize=False)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
CASE_SCALE = {"ci": 1, "long": 20}


@pytest.fixture(scope="module", autouse=True)
def hypothesis_files_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis's own files under the session's temp folder, never in the checkout."""
    set_hypothesis_home_dir(tmp_path_factory.getbasetemp() / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


def fuzz_settings(ci_cases: int) -> settings:
    """The settings for one route's fuzz test: `ci_cases` examples in CI, more in the long profile."""
    return settings(settings.get_profile(PROFILE), max_examples=ci_cases * CASE_SCALE.get(PROFILE, 1))


class FuzzTally:
    """The cases one route was fuzzed with and how many broke a promise, recorded on leaving.

    `with FuzzTally("POST /sms/incoming") as tally:` around the hypothesis run, and
    `with tally.case():` around each request: a case that raises (a failed assertion or
    anything else) counts as a failure. Cases are counted as they run, so the figure is
    what was sent, including hypothesis's replays while it shrinks a failure.
    """

    def __init__(self, route: str) -> None:
        self.route = route
        self.cases = 0
        self.failures = 0

    def __enter__(self) -> FuzzTally:
        return self

    def __exit__(self, *exc: object) -> None:
        record_fuzz(self.route, self.cases, self.failures)

    def case(self) -> _Case:
        return _Case(self)


class _Case:
    def __init__(self, tally: FuzzTally) -> None:
        self.tally = tally

    def __enter__(self) -> None:
        self.tally.cases += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is not None:
            self.tally.failures += 1


# -- the promises ---------------------------------------------------------------------------------

# The verbs our voice line may answer with, and what may be nested in <Gather>.
VOICE_VERBS = {"Say", "Play", "Pause", "Gather", "Record", "Redirect", "Hangup"}
GATHER_NESTED = {"Say", "Play", "Pause"}
SMS_VERBS = {"Message"}
# An error the app logged, or a traceback in any line: each means something failed unhandled.
FAILURE_LINE = re.compile(r"^(ERROR|CRITICAL) |Traceback \(most recent call last\)", re.MULTILINE)


def assert_answered_without_failing(response: TestResponse, log_lines: list[str]) -> None:
    """No 5xx, and nothing in the log saying something failed (log_lines: this case's lines only)."""
    assert response.status_code < 500, f"answered {response.status_code}: {response.get_data(as_text=True)[:300]}"
    failures = [line for line in log_lines if FAILURE_LINE.search(line)]
    assert not failures, "the app logged a failure:\n" + "\n".join(line[:2000] for line in failures)


def assert_valid_twiml(response: TestResponse, verbs: set[str], base_url: str) -> None:
    """A 200 with TwiML the provider can follow: XML, root <Response>, only `verbs`, our own URLs."""
    body = response.get_data(as_text=True)
    assert response.status_code == 200, f"answered {response.status_code}, not TwiML: {body[:300]}"
    assert response.mimetype == "text/xml", f"answered {response.mimetype}, not text/xml"
    root = ET.fromstring(body)  # our own answer: a ParseError fails the case
    assert root.tag == "Response", f"TwiML root is <{root.tag}>"
    for verb in root:
        assert verb.tag in verbs, f"unexpected verb <{verb.tag}> in {body[:300]}"
        if verb.tag == "Gather":
            nested = {child.tag for child in verb} - GATHER_NESTED
            assert not nested, f"unexpected {nested} inside <Gather>"
        else:
            assert not len(verb), f"<{verb.tag}> holds {[child.tag for child in verb]}"
        for url in (verb.get("action"), verb.get("recordingStatusCallback"),
                    verb.text if verb.tag == "Redirect" else None):
            assert url is None or url.startswith(base_url + "/"), f"<{verb.tag}> sends the provider to {url!r}"


# -- the provider's side --------------------------------------------------------------------------

class SignedWebhooks:
    """Twilio posting to our webhooks through Flask's test client, each request correctly signed.

    The signature is the official RequestValidator's, over PUBLIC_BASE_URL, the path and
    the query string exactly as sent, and every form pair (repeated keys included), which
    is what the edge checks. So every case passes the edge and reaches the line's code.
    """

    def __init__(self, app: Flask, base_url: str, auth_token: str) -> None:
        self.client = app.test_client()
        self.base_url = base_url
        self.validator = RequestValidator(auth_token)

    def post(self, path: str, form: MultiDict, query: list[tuple[str, str]] = ()) -> TestResponse:
        path_and_query = path + (f"?{urlencode(list(query))}" if query else "")
        signature = self.validator.compute_signature(self.base_url + path_and_query, form)
        # Form-encoded even when empty: Twilio's requests always are (the edge refuses others).
        return self.client.post(path_and_query, data=encoded_form(form), headers={"X-Twilio-Signature": signature},
                                content_type="application/x-www-form-urlencoded")


def encoded_form(form: MultiDict) -> bytes:
    """The request body for `form`, repeated keys and all; its length is what the 64 KiB limit counts."""
    return urlencode(list(form.items(multi=True))).encode()
