"""The console in a real browser: Debian's chromium driven by Playwright, no browser download.

The app runs in a real HTTP server (werkzeug, in this process, on a free loopback port);
people enrol and sign in with real TOTP codes; the page's own script saves drafts. Each
test saves screenshots under its tmp folder; with TIPLINE_DOCS_SCREENSHOTS=1 the main
pages are also written to docs/console/ (that is how the pictures in the docs are made).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from werkzeug.serving import make_server

from config.settings import PROJECT_ROOT
from ivr.console.hotspots import iso_week
from ivr.core import keys
from ivr.core.confidence import Word
from ivr.core.tips import READY, utc_now
from tests.calls import leave_a_message
from tests.console_people import a_texted_tip, enrolled

playwright_api = pytest.importorskip("playwright.sync_api", reason="make test installs playwright")

CHROMIUM_ARGS = ["--no-sandbox",  # tests run as root
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-first-run", "--disable-features=Translate,MediaRouter"]
REPORT = ("Two men sell cocaine from a grey Golf outside the chip shop on Mare Street, "
          "most evenings, and they keep it in the boot.")
XSS = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> '
       'They keep the knives in a blue holdall behind the garages on Fountain Road.')
DOCS_DIR = PROJECT_ROOT / "docs" / "console"


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        raise RuntimeError("chromium is not installed: run `make test`, which installs Debian's chromium.")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class LiveConsole:
    """The app behind a real HTTP server, and where its pages' pictures go."""

    def __init__(self, app, shots: Path) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.shots = shots
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def shoot(self, page, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        if os.environ.get("TIPLINE_DOCS_SCREENSHOTS") == "1":
            DOCS_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_DIR / f"{name}.png"), full_page=True)

    def stop(self) -> None:
        self.server.shutdown()


def live(app, tmp_path: Path) -> Iterator[LiveConsole]:
    console = LiveConsole(app, tmp_path / "screenshots")
    yield console
    console.stop()


@pytest.fixture
def site(app, tmp_path: Path) -> Iterator[LiveConsole]:
    yield from live(app, tmp_path)


def eventually(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def claim_idle_ms(app, reference: str) -> int:
    """How long the tip's claim has gone untouched (its pending entry's idle time)."""
    connection = app.extensions["tipline"].redis
    stream, entry = connection.hmget(keys.case(reference), "stream", "entry")
    (pending,) = connection.xpending_range(stream, "handlers", min=entry, max=entry, count=1)
    return pending["time_since_delivered"]


def signed_in_page(browser, site: LiveConsole, person):
    page = browser.new_context().new_page()
    page.goto(f"{site.url}/console/login")
    page.fill("input[name=name]", person.name)
    page.fill("input[name=password]", person.password)
    page.fill("input[name=code]", person.code())
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/console/$"))
    return page


# -- the day-one smoke test: a browser starts and renders a console page ---------------------------

def test_the_browser_renders_the_sign_in_page_under_the_csp(browser, site: LiveConsole) -> None:
    page = browser.new_page()
    response = page.goto(f"{site.url}/console/login")
    assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
    assert page.title() == "Sign in · Tipline"
    assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex"  # CSS loaded
    site.shoot(page, "login")
    page.close()


# -- a handler's whole job ------------------------------------------------------------------------------

def test_enrol_sign_in_claim_read_summarise_resolve_a_flag_and_pass_on(browser, site: LiveConsole, app,
                                                                        twilio) -> None:
    reference = a_texted_tip(twilio, "+447700900481", REPORT)
    admin = signed_in_page(browser, site, enrolled(app, "ada", "admin"))
    admin.click("text=Accounts")
    admin.fill("input[name=name]", "sam")
    admin.select_option("select[name=role]", "handler")
    admin.click("button:has-text('Add')")
    link = admin.inner_text("#enrolment-link code")
    site.shoot(admin, "accounts")

    sam = browser.new_context().new_page()
    sam.goto(site.url + link.removeprefix("https://tipline.example.org"))
    secret = sam.inner_text("code.secret")
    assert sam.locator(".qr svg").count() == 1
    site.shoot(sam, "enrol")
    password = "plums orbit quietly 42"
    sam.fill("input[name=password]", password)
    sam.fill("input[name=password_again]", password)
    sam.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() - 30))
    sam.click("button:has-text('Finish')")
    sam.wait_for_url(re.compile(r"/console/login$"))
    sam.fill("input[name=name]", "sam")
    sam.fill("input[name=password]", password)
    sam.fill("input[name=code]", pyotp.TOTP(secret).now())
    sam.click("button:has-text('Sign in')")
    sam.wait_for_url(re.compile(r"/console/$"))
    assert sam.inner_text("#waiting-normal") == "1"
    site.shoot(sam, "queue")

    sam.click("#claim-next")
    sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
    assert "grey Golf outside the chip shop" in sam.inner_text(".transcript")
    sam.fill("#summary", "I saw two men sell cocaine from a grey Golf on Mare Street at 22:15.")
    playwright_api.expect(sam.locator("#draft-status")).to_have_text("Draft saved.")
    assert app.extensions["console"].casework.draft(reference, "sam").startswith("I saw two men")
    sam.select_option("select[name=area]", "hackney")
    sam.select_option("select[name=category]", "drugs")
    site.shoot(sam, "tip")
    sam.click("#save-summary")
    sam.click("#pass-on")
    assert sam.locator("mark").count() >= 2  # "I saw", "22:15"
    site.shoot(sam, "pass-on")

    sam.click("a:has-text('Edit the summary')")  # resolve the first-person flag by rewriting it
    sam.fill("#summary", "Two men sell cocaine from a grey Golf on Mare Street at 22:15.")
    sam.click("#save-summary")
    sam.click("#pass-on")
    assert sam.locator("mark").count() == 1 and sam.inner_text("mark") == "at 22:15"
    sam.select_option("select[name=partner]", "met")
    sam.click("#confirm-pass-on")
    assert "could identify the tipster" in sam.inner_text("main")  # not confirmed yet: refused
    sam.check("input[name=confirm]")  # the handler decides the time cannot identify them
    sam.click("#confirm-pass-on")
    sam.wait_for_url(re.compile(rf"/console/tips/{reference}/package$"))
    assert sam.inner_text("#package-summary") == "Two men sell cocaine from a grey Golf on Mare Street at 22:15."
    assert "chip shop" not in sam.inner_text("main")
    site.shoot(sam, "package")

    # Earlier weeks' tags, so the hotspot chart has something to show beside today's tip.
    hotspots, today = app.extensions["console"].hotspots, date.today()
    for weeks_ago, area, category, count in ((1, "hackney", "drugs", 7), (2, "hackney", "drugs", 4),
                                             (1, "newham", "weapons", 5), (3, "newham", "weapons", 2),
                                             (2, "camden", "fraud", 3), (4, "hackney", "drugs", 9)):
        hotspots.record(app.extensions["tipline"].redis, iso_week(today - timedelta(weeks=weeks_ago)), area, category,
                        change=count)
    boss = signed_in_page(browser, site, enrolled(app, "jo", "supervisor"))
    boss.click("text=Audit trail")
    assert "Chain intact" in boss.inner_text("#chain-status") and "pass on" in boss.inner_text("table")
    site.shoot(boss, "audit")
    boss.click("text=Hotspots")
    assert boss.locator("figure.chart svg").count() == 1 and "<3" in boss.inner_text("#hotspot-table")
    site.shoot(boss, "hotspots")


class TestWithATwoSecondLease:
    @pytest.fixture
    def environment(self, environment: dict[str, str]) -> dict[str, str]:
        return {**environment, "CONSOLE_LEASE_SECONDS": "2"}

    def test_a_second_handler_cannot_take_a_leased_tip_until_the_lease_lapses(self, browser, site: LiveConsole,
                                                                               app, twilio) -> None:
        reference = a_texted_tip(twilio, "+447700900482", REPORT)
        sam = signed_in_page(browser, site, enrolled(app, "sam"))
        alex = signed_in_page(browser, site, enrolled(app, "alex"))
        sam.click("#claim-next")
        sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
        alex.click("#claim-next")
        assert "No tips are waiting" in alex.inner_text("main")  # leased to sam
        # sam does nothing: wait until the claim has been idle longer than the lease.
        eventually(lambda: claim_idle_ms(app, reference) > app.extensions["console"].casework.lease_seconds * 1000,
                   "sam's lease to lapse")
        alex.click("#claim-next")
        alex.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
        assert "alex" in alex.inner_text("#holder")
        sam.fill("#summary", "Written after the lease lapsed")
        # (Playwright's expect, not wait_for_function: the CSP forbids the eval that one needs.)
        playwright_api.expect(sam.locator("#draft-status")).to_have_text(
            "alex holds this tip now; your draft is kept.")
        assert app.extensions["console"].casework.draft(reference, "sam") == "Written after the lease lapsed"


def test_a_text_holding_a_script_cannot_run_in_the_handlers_browser(browser, site: LiveConsole, app, twilio) -> None:
    reference = a_texted_tip(twilio, "+447700900483", XSS, category_digit="2")
    sam = signed_in_page(browser, site, enrolled(app, "sam"))
    violations: list[str] = []
    sam.on("console", lambda message: violations.append(message.text))
    sam.click("#claim-next")
    sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
    assert "<script>window.__pwned = 1</script>" in sam.inner_text(".transcript")  # shown as text
    assert sam.evaluate("window.__pwned") is None
    assert sam.locator(".transcript img, .transcript script").count() == 0
    # Even markup that got into the page would not run: the CSP forbids inline handlers.
    sam.evaluate("""() => { window.__blocked = 0;
        document.addEventListener('securitypolicyviolation', () => { window.__blocked += 1; });
        document.body.insertAdjacentHTML('beforeend', '<img src="data:," onerror="window.__pwned = 3">'); }""")
    eventually(lambda: sam.evaluate("window.__blocked") > 0, "the CSP to report the inline handler")
    assert sam.evaluate("window.__pwned") is None
    site.shoot(sam, "xss-tip")


def test_a_doubtful_word_in_a_voice_transcript_is_marked_and_cannot_run_a_script(browser, site: LiveConsole, app,
                                                                                 twilio) -> None:
    """A voice part's text is labelled as the machine's, its doubtful words are marked (a
    title says why), and a "word" holding markup is still only text inside its mark."""
    reference, _pin = leave_a_message(twilio.call("+447700900486"), "1", "2", seconds=12)
    heard = "They keep <script>window.__pwned = 1</script> knives on Julie Street."
    words = (Word(" They", 0.9), Word(" keep", 0.9), Word(" <script>window.__pwned = 1</script>", 0.1),
             Word(" knives", 0.8), Word(" on", 0.9), Word(" Julie", 0.27), Word(" Street.", 0.7))
    app.extensions["tipline"].tips.finish_part(reference, 1, READY, transcript=heard, words=words)
    sam = signed_in_page(browser, site, enrolled(app, "sam"))
    sam.goto(f"{site.url}/console/tips/{reference}")

    assert "Machine transcript of the tipster's recording" in sam.inner_text("#part-1")
    marks = sam.locator("#part-1 .transcript mark.doubtful")
    assert marks.all_inner_texts() == ["<script>window.__pwned = 1</script>", "Julie"]
    assert marks.nth(1).get_attribute("title") == "the recogniser was unsure of this word"
    assert sam.inner_text("#part-1 .transcript") == heard
    assert sam.evaluate("window.__pwned") is None and sam.locator("#part-1 script").count() == 0
    assert sam.evaluate("getComputedStyle(document.querySelector('mark.doubtful')).borderBottomStyle") == "dotted"
    site.shoot(sam, "doubtful-words")


def test_a_form_whose_csrf_token_was_removed_is_refused(browser, site: LiveConsole, app, twilio) -> None:
    a_texted_tip(twilio, "+447700900484", REPORT)
    sam = signed_in_page(browser, site, enrolled(app, "sam"))
    sam.evaluate("document.querySelectorAll('form input[name=csrf_token]').forEach(input => input.remove())")
    sam.click("#claim-next")
    assert "Form refused" in sam.inner_text("h1")
    assert app.extensions["console"].casework.held_by("sam") == []  # nothing was claimed


# -- the way back to the tipster --------------------------------------------------------------------------

def test_a_question_asked_in_the_browser_shows_its_answer_on_reload_and_closing_needs_a_tick(
        browser, site: LiveConsole, app, twilio) -> None:
    reference = a_texted_tip(twilio, "+447700900485", REPORT)
    sam = signed_in_page(browser, site, enrolled(app, "sam"))
    sam.click("#claim-next")
    sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
    assert "lease about 15 min" in sam.inner_text("#holder")
    assert "stays on the tipster's phone" in sam.inner_text("#question-notice")

    sam.fill("#question", "Which door do the drugs go through?")
    sam.click("#ask")
    assert sam.locator(".flash.error").count() == 1 and "“drugs”" in sam.inner_text(".flash.error")
    assert sam.input_value("#question") == "Which door do the drugs go through?"  # kept, to edit
    sam.fill("#question", "Which door do they use?")
    sam.click("#ask")
    sam.wait_for_url(re.compile(rf"/console/tips/{reference}$"))
    assert "question waiting" in sam.inner_text("#question-1")

    app.extensions["tipline"].follow_up.answer_by_text(reference, "The side door by the bins.", answers=1)
    sam.reload()
    answer = sam.inner_text("#question-1 .answer")
    assert "The side door by the bins." in answer and "added later by the tipster" in answer
    assert "answered" in sam.inner_text("#question-1 .state")
    site.shoot(sam, "question")

    # Closing: no reason chosen for you, and nothing happens without the tick (the browser's own check).
    assert sam.input_value("select[name=reason]") == ""
    sam.select_option("select[name=reason]", "no-information")
    sam.click("#close")
    assert sam.url.endswith(f"/console/tips/{reference}")
    assert app.extensions["console"].casework.case(reference).finished is None
    sam.check("#close-form input[name=confirm]")
    sam.click("#close")
    sam.wait_for_url(re.compile(r"/console/$"))
    assert app.extensions["console"].casework.case(reference).finished == "closed"


def test_the_deadlines_page_shows_tips_of_various_ages(browser, site: LiveConsole, app, twilio) -> None:
    core = app.extensions["tipline"]
    now = datetime.now(UTC)
    try:
        for days, number in ((120, "+447700900486"), (40, "+447700900487"), (2, "+447700900488")):
            core.tips.clock = lambda days=days: now - timedelta(days=days)
            reference = a_texted_tip(twilio, number, REPORT)
            if days == 120:  # claimed then, and looked at since: its tipster has heard nothing new
                oldest = reference
                assert app.extensions["console"].casework.claim_next("sam") == oldest
    finally:
        core.tips.clock = utc_now
    boss = signed_in_page(browser, site, enrolled(app, "jo", "supervisor"))
    boss.click("text=Deadlines")
    boss.wait_for_url(re.compile(r"/console/deadlines$"))
    assert [boss.inner_text(f"#count-{key}") for key in ("unclaimed", "unanswered", "unchanged")] == ["2", "0", "1"]
    ages = boss.locator("#table-unclaimed td.age").all_inner_texts()
    assert [age.split(" d")[0] for age in ages] == ["40", "2"]  # oldest first
    assert oldest in boss.inner_text("#table-unchanged")
    assert boss.locator("figure.chart svg rect[fill='#b3261e']").count() >= 1
    site.shoot(boss, "deadlines")
