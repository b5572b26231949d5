"""Every console form, sent by a signed-in person with a valid CSRF token, with hostile values.

The CSRF check and the sign-in are the console's doors; these cases pass both, so what
they test is the code behind them: whatever a form or a path holds (huge, empty, control
characters, NULs, repeated keys, a reference or account name that is no such thing),
the person gets a page, a redirect or a refusal that says why, never a 5xx and nothing
in the log saying something failed.

Every form is fuzzed on one app with one admin (who holds every role) signed in and one
texted tip claimed by them, so a case can reach the change a form makes. State builds up
from case to case and form to form (a closed tip stays closed), as it does for a person
at the console.
Cases are counted per form (tests/hostile.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote, urlencode, urlsplit

import pytest
import redis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from config.settings import Settings
from dev.twilio.calls import TwilioLike
from ivr import create_app
from tests.conftest import PUBLIC_BASE_URL, LogLines, RedisServer, environment_for
from tests.console_people import CONSOLE_ORIGIN, CSRF_META, ConsoleClient, Person, a_texted_tip, enrolled
from tests.fuzzing import (
    FuzzTally,
    assert_answered_without_failing,
    fuzz_settings,
    hypothesis_files_in_tmp,  # noqa: F401 (an autouse fixture)
)
from tests.hostile_values import hostile_forms, hostile_texts, valid_references

# A failing case with a huge value must still show its assertion, not hypothesis's warning
# about the size of its report (pytest.ini makes warnings errors).
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

# A number from Ofcom's drama range for the tipster whose text the handler works on.
TIPSTER_NUMBER = "+447700900731"


@dataclass(frozen=True)
class ConsoleForm:
    """A console form: where it goes, its genuine fields, and the path parts it takes."""

    path: str  # with {reference}, {name} or {token} where the route takes one
    fields: dict[str, st.SearchStrategy[str]] = field(default_factory=dict)
    cases: int = 100
    method: str = "POST"


def summaries() -> st.SearchStrategy[str]:
    return st.sampled_from(["He was seen at 10:42 on Tuesday.", "I saw my neighbour sell drugs.", ""]) | st.text()


def questions() -> st.SearchStrategy[str]:
    return st.sampled_from(["Which door do they use?", "Was it at 22:15?", "Were the police there?",
                            "Czy widziałeś nóż?", "Where? " * 60, ""]) | st.text()


AREAS = st.sampled_from(["camden", "unknown", ""])
CATEGORIES = st.sampled_from(["drugs", "fraud", "other", ""])

# Every console route that takes a form or a query, with what a person genuinely sends.
CONSOLE_FORMS = [
    # First: each view of the audit page checks the whole trail, which every case lengthens.
    ConsoleForm("/console/audit", {"page": st.integers(-3, 5).map(str), "tip": valid_references(),
                                   "who": st.sampled_from(["ada", "hana"])}, cases=190, method="GET"),
    ConsoleForm("/console/login", {"name": st.sampled_from(["ada", "nobody"]), "password": st.text(),
                                   "code": st.sampled_from(["123456", "000000"])}, cases=40),
    ConsoleForm("/console/enrol/{token}", {"password": "a long enough password",
                                           "password_again": "a long enough password",
                                           "code": st.sampled_from(["123456", ""])}, cases=110),
    ConsoleForm("/console/claim", cases=150),
    ConsoleForm("/console/search", {"reference": valid_references()}, cases=400, method="GET"),
    ConsoleForm("/console/tips/{reference}/draft", {"summary": summaries()}, cases=450),
    ConsoleForm("/console/tips/{reference}/summary", {"summary": summaries(), "area": AREAS, "category": CATEGORIES},
                cases=450),
    ConsoleForm("/console/tips/{reference}/triage",
                {"triage": st.sampled_from(["in-review", "follow-up", "malicious"])}, cases=350),
    ConsoleForm("/console/tips/{reference}/notes", {"text": st.text(min_size=1)}, cases=280),
    ConsoleForm("/console/tips/{reference}/duplicate", {"original": valid_references()}, cases=350),
    # A question to the tipster: each case that passes the checks waits, so the next is refused
    # as "one waiting" until a withdraw case comes along with the right number.
    ConsoleForm("/console/tips/{reference}/question", {"text": questions(), "confirm": st.text(max_size=20)},
                cases=200),
    ConsoleForm("/console/tips/{reference}/question/withdraw", {"number": st.integers(0, 3).map(str)}, cases=120),
    ConsoleForm("/console/hotspots", {"first": st.dates().map(str), "last": st.dates().map(str)}, cases=190,
                method="GET"),
    ConsoleForm("/console/hotspots.svg", {"first": st.dates().map(str), "last": st.dates().map(str)}, cases=110,
                method="GET"),
    ConsoleForm("/console/admin/accounts", {"name": st.sampled_from(["newbie", "x"]) | st.text(max_size=40),
                                            "role": st.sampled_from(["handler", "supervisor", "admin"])}, cases=230),
    ConsoleForm("/console/admin/accounts/{name}/role", {"role": st.sampled_from(["handler", "supervisor"])},
                cases=190),
    ConsoleForm("/console/admin/accounts/{name}/enrolment", cases=110),
    # Last: these end what the forms above work on (the admin's hold on the tip, the tip, an account).
    ConsoleForm("/console/tips/{reference}/release", cases=150),
    ConsoleForm("/console/tips/{reference}/reassign", {"handler": st.sampled_from(["hana", "ada", "nobody"])},
                cases=230),
    ConsoleForm("/console/tips/{reference}/pass-on", {"partner": st.sampled_from(["met", "nca", ""]),
                                                       "summary_version": st.sampled_from(["", "0", "1"]),
                                                       "confirm": st.text(max_size=20),
                                                       "parts_seen": st.sampled_from(["1", "0", ""])}, cases=280),
    ConsoleForm("/console/tips/{reference}/close", {"reason": st.sampled_from(["duplicate", "malicious", ""]),
                                                    "confirm": st.sampled_from(["y", ""]),
                                                    "parts_seen": st.sampled_from(["1", "0", ""])}, cases=150),
    ConsoleForm("/console/admin/accounts/{name}/disable", cases=110),
]


def path_parts() -> st.SearchStrategy[str]:
    """A path segment that is not what the route expects: hostile text, sent percent-encoded."""
    return hostile_texts.filter(lambda text: len(text) < 4000)


@dataclass(frozen=True)
class SignedInAdmin:
    """An admin's browser, signed in, with a claimed tip, a second account and an enrolment link to act on."""

    client: ConsoleClient
    csrf_token: str
    reference: str
    other_account: str
    enrolment_token: str

    def submits(self, method: str, path: str, form: MultiDict) -> TestResponse:
        """The form as the page would send it (CSRF token, our Referer), repeated keys and all."""
        browser = self.client.client
        if method == "GET":
            query = urlencode(list(form.items(multi=True)))
            return browser.get(path + (f"?{query}" if query else ""), base_url=CONSOLE_ORIGIN)
        form = MultiDict(form)
        form.setlist("csrf_token", [self.csrf_token])
        return browser.post(path, data=form, base_url=CONSOLE_ORIGIN, headers={"Referer": CONSOLE_ORIGIN + path})


@pytest.fixture(scope="module")
def admin_at_work(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedInAdmin]:
    """One app and one signed-in admin for every form: setting up (argon2 for two accounts and a
    sign-in, a texted tip) costs more than a hundred cases, so the forms share it, in the order of
    CONSOLE_FORMS (closing the tip and disabling an account come last)."""
    settings = Settings.from_env(environment_for(redis_server.url, tmp_path_factory.mktemp("fuzz-console-var")))
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    app = create_app(settings)
    admin: Person = enrolled(app, "ada", role="admin")
    enrolled(app, "hana", role="handler")
    token = app.extensions["console"].accounts.create("newcomer", "handler")
    client = ConsoleClient(app, admin)
    assert client.signs_in().status_code == 302
    tipster = TwilioLike(_test_client_transport(app), PUBLIC_BASE_URL, settings.twilio_account_sid,
                         settings.twilio_auth_token)
    a_texted_tip(tipster, TIPSTER_NUMBER, "The red van outside the school on Mill Lane deals from the back at night.")
    reference = client.claims_next()
    assert reference
    found = CSRF_META.search(client.get("/console/").get_data(as_text=True))
    assert found
    yield SignedInAdmin(client=client, csrf_token=found.group(1), reference=reference, other_account="hana",
                        enrolment_token=token)
    app.extensions["tipline"].redis.close()
    connection.flushall()
    connection.close()


def _test_client_transport(app: Flask):
    """Twilio's requests, through Flask's test client (as conftest's `twilio` fixture sends them)."""
    client = app.test_client()

    def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        response = client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    return transport


def fill_path(template: str, admin: SignedInAdmin, hostile_part: str | None) -> str:
    """The route's path with the genuine reference, account or token, or a hostile part instead."""
    genuine = {"reference": admin.reference, "name": admin.other_account, "token": admin.enrolment_token}
    parts = {key: quote(hostile_part if hostile_part is not None else value, safe="") for key, value in genuine.items()}
    return template.format(**parts)


@pytest.mark.parametrize("console_form", CONSOLE_FORMS, ids=lambda form: f"{form.method} {form.path}")
def test_a_console_form_with_hostile_values_never_fails(console_form: ConsoleForm, admin_at_work: SignedInAdmin,
                                                       log_lines: LogLines) -> None:
    takes_part = "{" in console_form.path
    with FuzzTally(f"{console_form.method} {console_form.path}") as tally:
        @fuzz_settings(console_form.cases)
        @given(form=hostile_forms(console_form.fields),  # a button's form: only stray keys to add
               hostile_part=(st.none() | path_parts()) if takes_part else st.none())
        def a_person_sends_it(form: MultiDict, hostile_part: str | None) -> None:
            with tally.case():
                path = fill_path(console_form.path, admin_at_work, hostile_part)
                mark = len(log_lines.lines)
                response = admin_at_work.submits(console_form.method, path, form)
                assert_answered_without_failing(response, log_lines.lines[mark:])

        a_person_sends_it()


def test_every_console_form_is_fuzzed(app: Flask) -> None:
    """A new console route that takes a form must join CONSOLE_FORMS (GET pages without a query need not)."""
    posted = {rule.rule for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("console.") and "POST" in (rule.methods or ())}
    fuzzed = {form.path.replace("{reference}", "<reference>").replace("{name}", "<name>")
              .replace("{token}", "<token>") for form in CONSOLE_FORMS if form.method == "POST"}
    assert posted - fuzzed == {"/console/logout"}  # signs the fuzzing person out: tested in test_console.py


# -- what the fuzzing found ----------------------------------------------------------------------

@pytest.mark.parametrize("query", ["first=1001-01-01&last=0999-01-01", "last=0001-01-01", "first=9999-12-31",
                                   "first=0999-06-01"])
def test_a_hotspot_period_out_of_range_gets_the_default_weeks(app: Flask, query: str) -> None:
    """Found by the fuzzing: a year before 1000 made a week name the counts refused, and a day
    near date.min or date.max overflowed; each answered 500. Now the default eight weeks."""
    supervisor = ConsoleClient(app, enrolled(app, "sam", role="supervisor"))
    assert supervisor.signs_in().status_code == 302
    for path in ("/console/hotspots", "/console/hotspots.svg"):
        response = supervisor.get(f"{path}?{query}")
        assert response.status_code == 200, f"{path}?{query} answered {response.status_code}"
    assert f'value="{date.today().isoformat()}"' in supervisor.get(f"/console/hotspots?{query}").get_data(as_text=True)
