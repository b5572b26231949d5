"""The way back to a tipster, at the console: questions, answers, returning tips, supplements,
the tipster-facing status, the deadlines page, and the fixes a new handler asked for.

Tips come in as a tipster texts them (signed webhooks through the edge); a tipster's answer
is what the SMS line stores (`core.follow_up.answer_by_text`); people sign in with real TOTP
codes. Ages are made by setting the core's clock (`core.tips.clock`) before a tip arrives:
nothing sleeps. The browser's side is in test_console_browser.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ivr.console.cases import NewsArrived
from ivr.console.catalogue import load_console_catalogue
from ivr.console.flags import find_flags
from ivr.console.hotspots import iso_week
from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.pin_guard import PIN_CHECKS_PER_WINDOW
from ivr.core.prompts import CONFIG_DIR, CatalogueError
from ivr.core.references import new_reference
from ivr.core.statuses import QuestionState, TipsterStatus, Triage
from ivr.core.tips import NewPart, utc_now
from ivr.core.transactions import atomically
from tests.console_people import ConsoleClient, Person, a_texted_tip, enrolled
from tests.privacy import scan_redis

REPORT = ("Two men sell cocaine from a grey Golf outside the chip shop on Mare Street, "
          "most evenings, and they keep it in the boot.")
SENDER = "+447700900611"
QUESTION = "Which door of the shop do they use?"


@pytest.fixture
def handler(app, sam: Person) -> ConsoleClient:
    client = ConsoleClient(app, sam)
    assert client.signs_in().status_code == 302
    return client


@pytest.fixture
def clock(core) -> Iterator[list[datetime]]:
    """Set `clock[0]` to move the core's "now"; put back afterwards."""
    now = [utc_now()]
    core.tips.clock = lambda: now[0]
    yield now
    core.tips.clock = utc_now


def signed_in_as(app, person: Person) -> ConsoleClient:
    client = ConsoleClient(app, person)
    assert client.signs_in().status_code == 302, client.text()[:300]
    return client


def claimed(twilio, client: ConsoleClient, number: str = SENDER) -> str:
    reference = a_texted_tip(twilio, number, REPORT)
    assert client.claims_next() == reference
    return reference


def asks(client: ConsoleClient, reference: str, text: str, confirm: list[str] | None = None):
    return client.post(f"/console/tips/{reference}/question", {"text": text, "confirm": confirm or []})


def actions(console, reference: str) -> list[tuple[str, str]]:
    return [(entry.action, entry.detail) for entry in console.audit.for_tip(reference)]


def a_tip_in(core, language: str) -> str:
    """A tip in `language` as the core stores one (the SMS line's own flow offers the menu)."""
    reference = new_reference()
    part = NewPart(choices=Choices(language=language, category="drugs", reference=reference), pin_hash=None,
                   channel="sms", urgent=False, seconds=0)
    atomically(core.redis, [keys.tip(reference)],
               lambda pipe: core.tips.add_text_part(pipe, part, "Mae dau ddyn yn gwerthu o gar llwyd."))
    return reference


# -- asking, answering, reading ---------------------------------------------------------------

def test_a_question_waits_its_answer_shows_beneath_it_and_each_step_is_audited(
        app, twilio, handler: ConsoleClient, console, core, redis_client) -> None:
    reference = claimed(twilio, handler)
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert "lease about 15 min" in page  # 900 s left: not "about 16"
    assert "read out by the phone company's computer voice, or sent as a text message" in page
    assert "stays on the tipster's phone" in page
    assert "“Your information is being looked at.”" in page  # the words the tipster hears
    assert 'id="question-under-attack"' not in page
    for _ in range(PIN_CHECKS_PER_WINDOW):  # someone guesses the reference's PIN until it locks
        assert not core.pin_guard.proves(reference, "000000")
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert "whoever gets in hears the question too" in page[page.index('id="question-notice"'):]

    assert asks(handler, reference, QUESTION).status_code == 302
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    waiting = page[page.index('id="question-1"'):]
    assert "question waiting" in waiting and QUESTION in waiting and "asked by sam" in waiting
    assert 'id="withdraw-question"' in waiting and 'id="question-form"' not in page  # one at a time
    assert scan_redis(redis_client, {"Which door of the shop"}) == []  # sealed under the tip's key
    assert ("ask", "question=1") in actions(console, reference)
    assert not any(QUESTION[:10] in detail for _, detail in actions(console, reference))

    # The tipster texts back while sam holds the tip: it stays sam's, marked on the dashboard.
    index = core.follow_up.answer_by_text(reference, "The side door by the bins.", answers=1)
    dashboard = handler.get("/console/").get_data(as_text=True)
    assert re.search(rf"{reference}</a> <span class=\"came-back\">", dashboard)
    assert console.casework.case(reference).news

    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    question = page[page.index('id="question-1"'):page.index("</article>", page.index('id="question-1"'))]
    assert "answered" in question and "The side door by the bins." in question
    assert f'id="answer-{index}"' in question and "added later by the tipster" in question
    assert page.count("The side door by the bins.") == 1  # under the question, not twice
    assert not console.casework.case(reference).news  # taken: the dashboard stops marking it
    handler.get(f"/console/tips/{reference}")
    trail = actions(console, reference)
    assert trail.count(("read_answer", f"question=1 part={index}")) == 1  # the first showing only
    assert ("renew", "the tipster came back") in trail
    assert console.audit.verify().ok


def test_a_withdrawn_question_makes_room_for_another_and_only_the_holder_may_do_either(
        app, twilio, handler: ConsoleClient, console, core) -> None:
    reference = claimed(twilio, handler)
    asks(handler, reference, QUESTION)
    other = signed_in_as(app, enrolled(app, "alex"))
    other.get(f"/console/tips/{reference}")
    assert 'id="withdraw-question"' not in other.text() and 'id="question-form"' not in other.text()
    other.post(f"/console/tips/{reference}/question/withdraw", {"number": "1"})
    assert "sam holds this tip now" in other.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert core.follow_up.waiting_question(reference).number == 1

    assert handler.post(f"/console/tips/{reference}/question/withdraw", {"number": "1"}).status_code == 302
    assert core.follow_up.questions(reference)[0].state == QuestionState.WITHDRAWN
    assert "withdrawn" in handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert asks(handler, reference, "What colour is their car?").status_code == 302
    assert [q.state for q in core.follow_up.questions(reference)] == [QuestionState.WITHDRAWN,
                                                                      QuestionState.WAITING]
    trail = actions(console, reference)
    assert ("withdraw", "question=1") in trail and ("ask", "question=2") in trail
    assert [who for who, action in [(e.who, e.action) for e in console.audit.for_tip(reference)]
            if action in ("ask", "withdraw")] == ["sam", "sam", "sam"]


def test_every_refusal_says_why_once_keeps_the_text_and_asks_nothing(
        app, twilio, handler: ConsoleClient, console, core) -> None:
    reference = claimed(twilio, handler)

    def refused(text: str, message: str, client: ConsoleClient = handler, confirm: list[str] | None = None) -> str:
        response = asks(client, reference, text, confirm)
        page = client.text()
        assert response.status_code == 400, page[:300]
        assert page.count(message) == 1, (message, page[page.find("<main>"):][:1500])
        assert core.follow_up.waiting_question(reference) is None
        return page

    page = refused("Did they sell the drugs from the Golf?", "The question says “drugs”")
    assert "Did they sell the drugs from the Golf?</textarea>" in page  # kept, to be edited
    refused("Are the police welcome at the shop?", "“police”")
    fits = console.questions.characters_that_fit("en")
    page = refused("Was it " + "exactly where you said, " * 12 + "?", "The question is too long")
    assert f"in English at most {fits} characters fit" in page and "and it has 296" in page
    flagged = "Was it at 22:15 that the car came?"
    page = refused(flagged, "1 thing in the question could identify the tipster")
    assert 'name="confirm" value="exact_time:at 22:15"' in page and "thing(s)" not in page
    refused("", "Write the question first.")
    other = signed_in_as(app, enrolled(app, "alex"))
    refused("What colour is the car?", "sam holds this tip now", client=other)
    assert [action for action, _ in actions(console, reference)].count("ask") == 0

    # Confirmed, the flagged question is asked; a second one waits its turn.
    fingerprints = [flag.fingerprint for flag in find_flags(flagged)]
    assert asks(handler, reference, flagged, fingerprints).status_code == 302
    assert core.follow_up.waiting_question(reference).text == flagged
    assert asks(handler, reference, "And the car?").status_code == 400
    assert handler.text().count("A question is already waiting for the tipster: withdraw it first.") == 1

    # The tipster closes their reference: nothing more can be asked, and the page says so.
    core.follow_up.withdraw(reference, 1)
    assert core.follow_up.close_reference(reference)
    page = refused("What colour is the car?", "The tipster closed their reference")
    assert "Reference closed by the tipster" in handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert [action for action, _ in actions(console, reference)].count("ask") == 1


def test_the_words_a_question_must_not_say_are_found_in_each_language(app, console, core) -> None:
    questions = console.questions
    assert questions.giveaways_in("en", "Were the Police there? Did you see guns?") == ["Police", "guns"]
    assert questions.giveaways_in("en", "Which policy? Has it begun? What else?") == []  # whole words
    assert questions.giveaways_in("en", "Is a child at risk there?") == ["a child at risk"]  # a category label
    assert questions.giveaways_in("en", "Is it something else?") == []  # the catch-all's label is no giveaway
    assert questions.giveaways_in("cy", "Oedd y gyffuriau yn y car?") == ["gyffuriau"]  # a mutated form
    assert questions.giveaways_in("cy", "Oedd yr heddlu yno? Or the drugs?") == ["heddlu", "drugs"]
    assert questions.giveaways_in("pl", "Czy policja tam była? Czy widziałeś noz?") == ["policja", "noz"]
    assert questions.giveaways_in("pl", "Czy to zagrożone dziecko?") == ["zagrożone dziecko"]

    # How much fits is the core's to say: the limit given is exactly the edge.
    for language, letter in (("en", "a"), ("cy", "a"), ("cy", "ŵ"), ("pl", "ą")):
        fits = questions.characters_that_fit(language, letter)
        assert core.follow_up.fits_a_text(language, letter * fits)
        assert not core.follow_up.fits_a_text(language, letter * (fits + 1))
    welsh = a_tip_in(core, "cy")
    assert console.casework.claim_next("sam") == welsh
    with pytest.raises(Exception, match=rf"with a letter such as “ŵ”, at most "
                                        rf"{questions.characters_that_fit('cy', 'ŵ')} characters fit"):
        questions.ask(welsh, "sam", "Pa ddrws? " + "ŵ" * 100, set())


def test_the_catalogue_needs_words_for_every_language(app, tmp_path) -> None:
    raw = json.loads((CONFIG_DIR / "console.json").read_text(encoding="utf-8"))
    del raw["giveaway_words"]["pl"]
    (tmp_path / "console.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"'giveaway_words' .* missing \['pl'\]"):
        load_console_catalogue(app.extensions["tipline"].menus, tmp_path / "console.json")
    raw["giveaway_words"]["pl"] = ["na*"]
    (tmp_path / "console.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CatalogueError, match="at least 3 letters"):
        load_console_catalogue(app.extensions["tipline"].menus, tmp_path / "console.json")


# -- returning tips and supplements ------------------------------------------------------------

def test_an_answer_goes_to_the_asker_first_and_to_the_returning_queue_after_the_lease(
        app, twilio, handler: ConsoleClient, console, core, redis_client) -> None:
    reference = claimed(twilio, handler)
    asks(handler, reference, QUESTION)
    handler.post(f"/console/tips/{reference}/release")  # sam goes home; the question waits
    newer = a_texted_tip(twilio, "+447700900612", REPORT)
    core.follow_up.answer_by_text(reference, "The side door.", answers=1)

    assert reference in handler.get("/console/").get_data(as_text=True)  # back in sam's own list
    assert 'id="waiting-returning">0<' in handler.text()  # offered to sam, not waiting for anyone
    other = signed_in_as(app, enrolled(app, "alex"))
    assert other.claims_next() == newer  # sam's lease still runs
    other.get(f"/console/tips/{reference}")
    assert "sam is offered it first" in other.text()

    stream, entry = redis_client.hmget(keys.case(reference), "stream", "entry")
    redis_client.xclaim(stream, "handlers", "sam", 0, [entry], idle=console.casework.lease_seconds * 1000 + 1,
                        justid=True)  # sam's lease runs out untouched
    assert other.claims_next() == reference
    assert console.casework.holder(reference) == "alex" and reference not in console.casework.held_by("sam")


def test_new_information_reopens_a_passed_on_tip_for_a_supplement_counted_once(
        app, twilio, handler: ConsoleClient, console, core) -> None:
    reference = claimed(twilio, handler)
    handler.post(f"/console/tips/{reference}/summary", {"summary": "A grey Golf is used to sell drugs.",
                                                        "area": "hackney", "category": "drugs"})
    version = console.casework.case(reference).summary_version
    handler.post(f"/console/tips/{reference}/pass-on", {"partner": "met", "summary_version": version,
                                                        "parts_seen": "1"})
    first = json.loads(handler.get(f"/console/tips/{reference}/package.json").get_data())
    assert first["supplement_to"] is None
    week = iso_week(datetime.now(UTC).date())

    core.follow_up.answer_by_text(reference, "They moved the car to Well Street.", answers=None)
    assert core.tips.get(reference).tipster_status == TipsterStatus.LOOKED_AT
    assert 'id="waiting-returning">1<' in handler.get("/console/").get_data(as_text=True)
    assert handler.claims_next() == reference
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert "so it was reopened" in page and f"supplement</strong> to the one of {first['date']}" in page
    assert "Check and pass on a supplement" in page and "added later by the tipster" in page

    handler.post(f"/console/tips/{reference}/summary", {"summary": "A grey Golf is used to sell drugs; it moved.",
                                                        "area": "camden", "category": "drugs"})
    handler.get(f"/console/tips/{reference}/pass-on?seen=2")
    assert "this pass-on is a <strong>supplement</strong>" in handler.text()
    version = console.casework.case(reference).summary_version
    assert handler.post(f"/console/tips/{reference}/pass-on", {"partner": "met", "summary_version": version,
                                                               "parts_seen": "2"}).status_code == 302
    second = json.loads(handler.get(f"/console/tips/{reference}/package.json").get_data())
    assert second["supplement_to"] == first["date"] and second["summary"].endswith("it moved.")
    assert "<strong>Supplement</strong> to the information passed on" in handler.get(
        f"/console/tips/{reference}/package").get_data(as_text=True)
    # Counted once, under its new area: the re-tag moved the count.
    assert console.hotspots.counts([week]) == {("camden", "drugs"): {week: 1}}
    assert core.tips.get(reference).tipster_status == TipsterStatus.PASSED_ON


def test_news_arriving_while_the_holder_finishes_refuses_the_finish(
        app, twilio, handler: ConsoleClient, console, core) -> None:
    reference = claimed(twilio, handler)
    handler.post(f"/console/tips/{reference}/summary", {"summary": "A grey Golf is used to sell drugs.",
                                                        "area": "hackney", "category": "drugs"})
    handler.get(f"/console/tips/{reference}/pass-on?seen=1")
    assert 'name="parts_seen" type="hidden" value="1"' in handler.text()
    core.follow_up.answer_by_text(reference, "It is a grey Golf GTI.", answers=None)  # meanwhile

    version = console.casework.case(reference).summary_version
    refused = handler.post(f"/console/tips/{reference}/pass-on", {"partner": "met", "summary_version": version,
                                                                  "parts_seen": "1"})
    assert refused.status_code == 302 and refused.headers["Location"].endswith(f"/tips/{reference}")
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert page.count("New information from the tipster arrived: read it, then pass it on.") == 1
    handler.post(f"/console/tips/{reference}/close", {"reason": "duplicate", "confirm": "y", "parts_seen": "1"})
    assert "read it, then close it" in handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert console.casework.case(reference).finished is None
    handler.post(f"/console/tips/{reference}/close", {"reason": "duplicate", "confirm": "y", "parts_seen": "2"})
    assert console.casework.case(reference).finished == Triage.CLOSED


def close_racing_news(console, core, reference: str) -> bool:
    """sam closes (having seen one part) while the tipster adds one; True when the close was refused."""
    barrier, refusals = threading.Barrier(2), []

    def close() -> None:
        barrier.wait()
        try:
            console.casework.close(reference, "sam", "duplicate", parts_seen=1)
        except NewsArrived:
            refusals.append(True)

    def news() -> None:
        barrier.wait()
        core.follow_up.answer_by_text(reference, "One more thing.", answers=None)

    threads = [threading.Thread(target=close), threading.Thread(target=news)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return bool(refusals)


def test_news_racing_a_close_never_finishes_a_tip_with_unread_news(app, twilio, console, core) -> None:
    """The count of parts is read inside the finish's WATCH: whichever lands first, the tip
    ends open (refused, or reopened by the news), never finished over a part nobody read."""
    for attempt in range(4):
        reference = a_texted_tip(twilio, f"+44770090062{attempt}", REPORT)
        assert console.casework.claim_next("sam") == reference
        refused = close_racing_news(console, core, reference)
        case = console.casework.case(reference)
        assert case.finished is None and len(core.tips.get(reference).parts) == 2
        assert (case.reopened, refused) in ((1, False), (0, True))
        if case.reopened:  # back in the returning queue: someone else takes it, out of the next round's way
            assert console.casework.claim_next("alex") == reference


# -- the fixes a new handler asked for --------------------------------------------------------------

def test_close_has_no_reason_chosen_and_needs_a_confirmation(app, twilio, handler: ConsoleClient,
                                                             console) -> None:
    reference = claimed(twilio, handler)
    page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="reason"[^>]*>(.*?)</select>', page, re.S)
    assert select and "required" in select.group(0)
    assert select.group(1).startswith('<option value="">Choose a reason</option>')
    assert "selected" not in select.group(1)  # the browser shows the placeholder: nothing chosen
    assert re.search(r'<input[^>]*name="confirm"[^>]*required[^>]*type="checkbox"', page)

    for form in ({"reason": "no-information", "parts_seen": "1"}, {"reason": "", "confirm": "y", "parts_seen": "1"}):
        assert handler.post(f"/console/tips/{reference}/close", form).status_code == 302
        page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
        assert page.count("Choose a reason for closing it, and tick “Yes, close this tip”.") == 1
        assert console.casework.case(reference).finished is None
    handler.post(f"/console/tips/{reference}/close", {"reason": "no-information", "confirm": "y", "parts_seen": "1"})
    assert console.casework.case(reference).finished == Triage.CLOSED
    assert ("close", "reason=no-information") in actions(console, reference)


def test_a_pass_on_refused_for_flags_says_so_once_counting_properly(app, twilio, handler: ConsoleClient,
                                                                    console) -> None:
    reference = claimed(twilio, handler)
    for summary, count in (("Two men sell drugs from a grey Golf at 22:15.", "1 thing"),
                           ("I saw two men sell drugs from a grey Golf at 22:15.", "2 things")):
        handler.post(f"/console/tips/{reference}/summary", {"summary": summary, "area": "hackney",
                                                            "category": "drugs"})
        version = console.casework.case(reference).summary_version
        response = handler.post(f"/console/tips/{reference}/pass-on", {"partner": "met", "summary_version": version,
                                                                       "parts_seen": "1"})
        page = handler.text()
        assert response.status_code == 400 and page.count("could identify the tipster") == 1
        assert f"Not passed on yet: {count} below could identify the tipster" in page and "thing(s)" not in page


# -- the deadlines page ------------------------------------------------------------------------------

def test_the_deadlines_page_lists_what_is_owed_oldest_first_with_counts(app, twilio, console, core,
                                                                        clock: list[datetime]) -> None:
    now = clock[0]
    clock[0] = now - timedelta(days=120)
    stale = a_texted_tip(twilio, "+447700900631", REPORT)  # claimed long ago, never finished
    assert console.casework.claim_next("sam") == stale
    clock[0] = now - timedelta(days=10, hours=3)
    asked = a_texted_tip(twilio, "+447700900632", REPORT)
    assert console.casework.claim_next("sam") == asked
    core.follow_up.ask(asked, "sam", QUESTION)
    deleted = a_texted_tip(twilio, "+447700900635", REPORT)  # its question outlives it on the list
    assert console.casework.claim_next("sam") == deleted
    core.follow_up.ask(deleted, "sam", QUESTION)
    core.tips.shred(deleted)
    clock[0] = now - timedelta(days=3, hours=5)
    waiting_long = a_texted_tip(twilio, "+447700900633", REPORT)
    clock[0] = now - timedelta(hours=2)
    waiting_short = a_texted_tip(twilio, "+447700900634", REPORT)
    clock[0] = now

    boss = signed_in_as(app, enrolled(app, "jo", "supervisor"))
    page = boss.get("/console/deadlines").get_data(as_text=True)
    counts = {key: re.search(rf'id="count-{key}">(\d+)<', page).group(1) for key in
              ("unclaimed", "unanswered", "unchanged")}
    assert counts == {"unclaimed": "2", "unanswered": "2", "unchanged": "1"}
    unclaimed = page[page.index('id="table-unclaimed"'):page.index("</table>", page.index('id="table-unclaimed"'))]
    assert unclaimed.index(waiting_long) < unclaimed.index(waiting_short)  # oldest first
    assert re.search(r">3 d 5 h<|>3 d 6 h<", unclaimed) and re.search(r">[23] h<", unclaimed)
    unanswered = page[page.index('id="table-unanswered"'):]
    assert asked in unanswered and re.search(r">10 d<", unanswered) and "asked by sam" in unanswered
    assert deleted in unanswered and "the tip was deleted" in unanswered
    unchanged = page[page.index('id="table-unchanged"'):]
    assert stale in unchanged and "“Your information is being looked at.”" in unchanged
    assert "Status unchanged for over 90 days" in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "<script" not in svg and "over 3 months" in svg and "What is owed to tipsters" in svg
    assert ("view_deadlines", "unclaimed=2 unanswered=2 unchanged=1 retention=0") in [
        (e.action, e.detail) for e in console.audit.entries(count=3, who="jo")]
    assert signed_in_as(app, enrolled(app, "sam2")).get("/console/deadlines").status_code == 403
