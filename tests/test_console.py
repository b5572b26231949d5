"""The handlers' console over HTTP (no browser): sign-in, roles, CSRF, leases, pass-on.

Tips come in as a tipster would send them (signed SMS webhooks through the edge); people
are enrolled through the real account store and sign in with real TOTP codes. The
browser-only promises (CSP against a script in a transcript, the draft kept as one types)
are in test_console_browser.py.
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from ivr.core import keys
from ivr.core.statuses import Triage
from tests.console_people import ConsoleClient, Person, a_texted_tip, enrolled
from tests.privacy import scan_redis

REPORT = ("Two men sell cocaine from a grey Golf outside the chip shop on Mare Street, "
          "most evenings, and they keep it in the boot.")
URGENT_REPORT = "A boy of about fifteen is being made to carry knives for older men near the station."
SENDER = "+447700900461"


@pytest.fixture
def alex(app) -> Person:
    return enrolled(app, "alex", "handler")


@pytest.fixture
def signed_in(app, sam: Person) -> ConsoleClient:
    client = ConsoleClient(app, sam)
    assert client.signs_in().status_code == 302
    return client


def signed_in_as(app, person: Person) -> ConsoleClient:
    client = ConsoleClient(app, person)
    assert client.signs_in().status_code == 302, client.text()[:500]
    return client


# -- signing in ---------------------------------------------------------------------------------

def test_a_handler_signs_in_with_password_and_code_and_the_cookie_is_locked_down(app, sam: Person) -> None:
    client = ConsoleClient(app, sam)
    response = client.signs_in()
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tipline_console="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Expires=" in cookie  # lasts only the idle timeout
    page = client.get("/console/")
    assert page.status_code == 200 and "Claim the next tip" in client.text()
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("what", ["password", "code", "name"])
def test_every_failed_sign_in_gets_the_same_answer(app, sam: Person, what: str) -> None:
    client = ConsoleClient(app, sam)
    client.get("/console/login")
    form = {"name": sam.name, "password": sam.password, "code": sam.code()}
    form[what] = {"password": "not the password at all", "code": "000000", "name": "nobody"}[what]
    response = client.post("/console/login", form)
    assert response.status_code == 401
    assert "Sign-in failed. Check your name, password and the current code" in client.text()
    assert client.get("/console/").status_code == 302  # still signed out


ATTACKER, OFFICE = "203.0.113.7", "198.51.100.20"


def test_five_failures_pause_their_address_even_for_the_right_password_but_not_the_handler(
        app, sam: Person, console, redis_client) -> None:
    attacker = ConsoleClient(app, sam, address=ATTACKER)
    for _ in range(5):
        assert attacker.signs_in(password="wrong wrong wrong").status_code == 401
    locked = attacker.signs_in()  # the right password and code, from the paused address
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins from your network address" in attacker.text()
    assert "tell your supervisor" in attacker.text() and attacker.get("/console/").status_code == 302
    assert ConsoleClient(app, sam, address=OFFICE).signs_in().status_code == 302  # sam, elsewhere, is not locked out

    trail = [(e.action, e.detail) for e in console.audit.entries(count=20, who="sam")]
    assert trail.count(("sign_in_failed", "")) == 5 and trail.count(("sign_in_locked", "address for 15 min")) == 1
    address_keys = redis_client.keys(keys.console_address_failures("*"))  # the attacker's and the office's
    assert len(address_keys) == 2 and all(0 < redis_client.ttl(k) <= 15 * 60 for k in address_keys)  # kept no longer
    assert scan_redis(redis_client, {ATTACKER, ATTACKER.replace(".", "")}) == []  # and never as itself


def test_twenty_failures_from_several_addresses_lock_the_name(app, sam: Person, console, redis_client) -> None:
    for attacker in range(4):
        client = ConsoleClient(app, sam, address=f"203.0.113.{attacker + 10}")
        for _ in range(5):
            assert client.signs_in(password="wrong wrong wrong").status_code == 401
    handler = ConsoleClient(app, sam, address=OFFICE)
    assert handler.signs_in().status_code == 429 and "This name is locked" in handler.text()
    assert 0 < redis_client.ttl(console.accounts.limits.account_key("sam")) <= 15 * 60
    assert ("sign_in_locked", "account for 15 min") in [(e.action, e.detail) for e in console.audit.entries(count=5)]
    assert ConsoleClient(app, enrolled(app, "alex"), address=OFFICE).signs_in().status_code == 302  # others are not


def test_a_sign_in_gives_its_address_back_the_try_it_used(app, sam: Person, console, redis_client) -> None:
    office = ConsoleClient(app, sam, address=OFFICE)
    for _ in range(4):
        assert office.signs_in(password="wrong wrong wrong").status_code == 401
    assert office.signs_in().status_code == 302
    assert redis_client.get(console.accounts.limits.account_key("sam")) is None  # the handler proved who they are
    (address_key,) = redis_client.keys(keys.console_address_failures("*"))
    assert redis_client.get(address_key) == b"4"  # 4 failures; the sign-in itself is not one


def test_a_phone_number_typed_as_a_name_becomes_no_key_name(app, redis_client) -> None:
    """Anyone can type anything in the name box: it is counted under its keyed digest, and the
    audit trail names only accounts that exist, never what a stranger typed."""
    client = ConsoleClient(app)
    client.get("/console/login")
    typed = "a07700900863"
    assert client.post("/console/login", {"name": typed, "password": "wrong wrong wrong", "code": "123456"}
                       ).status_code == 401
    assert redis_client.keys(keys.console_failures("*")) != []  # the attempt was counted
    assert not any(b"07700900863" in key for key in redis_client.keys("*"))
    assert scan_redis(redis_client, {"07700900863"}) == []


def test_a_code_is_accepted_once(app, sam: Person) -> None:
    code = sam.code()
    assert ConsoleClient(app, sam).signs_in(code=code).status_code == 302
    assert ConsoleClient(app, sam).signs_in(code=code).status_code == 401  # replayed
    assert ConsoleClient(app, sam).signs_in(code=sam.code(1)).status_code == 302


def test_idle_sign_ins_end_on_the_server_and_sign_out_ends_them_at_once(app, signed_in: ConsoleClient) -> None:
    connection = app.extensions["tipline"].redis
    (login_key,) = connection.keys(keys.console_login("*"))
    assert 0 < connection.ttl(login_key) <= 15 * 60
    # Time moves on: the sign-in has only 1.5 s of its idle time left, and a request comes.
    connection.pexpire(login_key, 1500)
    assert signed_in.get("/console/").status_code == 200
    assert connection.ttl(login_key) > 15 * 60 - 5  # renewed to the whole idle time
    time.sleep(2)  # past where it would have ended without that request
    assert signed_in.get("/console/").status_code == 200
    # Now no request comes for longer than what is left of the idle time.
    connection.pexpire(login_key, 300)
    deadline = time.monotonic() + 5
    while connection.exists(login_key):
        assert time.monotonic() < deadline, "the sign-in never lapsed"
        time.sleep(0.05)
    response = signed_in.get("/console/")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]

    again = ConsoleClient(app, signed_in.person)
    assert again.signs_in(code=signed_in.person.code(1)).status_code == 302  # the first code is spent
    assert again.post("/console/logout").status_code == 302
    assert connection.keys(keys.console_login("*")) == []
    assert again.get("/console/").status_code == 302


def test_disabling_an_account_signs_it_out_everywhere(app, signed_in: ConsoleClient, console) -> None:
    console.accounts.disable("sam")
    assert signed_in.get("/console/").status_code == 302
    assert ConsoleClient(app, signed_in.person).signs_in(code=signed_in.person.code(1)).status_code == 401


# -- enrolment ------------------------------------------------------------------------------------

def test_an_enrolment_link_works_once_and_sets_password_and_totp(app, console) -> None:
    import pyotp

    token = console.accounts.create("kim", "supervisor")
    client = ConsoleClient(app)
    page = client.get(f"/console/enrol/{token}")
    assert page.status_code == 200 and "<svg" in client.text()  # the QR code, inline SVG
    secret = console.accounts.enrolment(token).totp_secret
    assert secret in client.text()
    assert client.post(f"/console/enrol/{token}", {"password": "short", "password_again": "short",
                                                   "code": pyotp.TOTP(secret).now()}).status_code == 400
    assert "at least 12 characters" in client.text()
    good = "plums orbit quietly 42"
    assert client.post(f"/console/enrol/{token}", {"password": good, "password_again": good,
                                                   "code": "123456"}).status_code == 400
    code = pyotp.TOTP(secret).at(time.time() - 30)
    response = client.post(f"/console/enrol/{token}", {"password": good, "password_again": good, "code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/login")
    assert client.get(f"/console/enrol/{token}").status_code == 404  # spent
    kim = Person("kim", "supervisor", good, secret)
    assert ConsoleClient(app, kim).signs_in().status_code == 302
    stored = app.extensions["tipline"].redis.hgetall(keys.console_account("kim"))
    assert stored[b"password_hash"].startswith(b"$argon2id$") and secret.encode() not in b"".join(stored.values())


@pytest.mark.parametrize("token", ["garbage", "eyJuYW1lIjoic2FtIn0.forged.signature", "x" * 500])
def test_a_forged_enrolment_link_is_refused_clearly(app, token: str) -> None:
    client = ConsoleClient(app)
    assert client.get(f"/console/enrol/{token}").status_code == 404
    assert "not valid" in client.text()


def test_the_cli_makes_an_admin_whose_link_works_and_verifies_the_audit_trail(app, environment) -> None:
    import subprocess
    import sys
    from pathlib import Path

    tipline = str(Path(sys.executable).parent / "tipline")
    env = {**environment, "PATH": str(Path(sys.executable).parent)}
    made = subprocess.run([tipline, "handler", "add", "--role", "admin", "robin"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith("https://tipline.example.org/console/enrol/") and "password" not in made.stdout.lower()
    client = ConsoleClient(app)
    assert client.get(link.removeprefix("https://tipline.example.org")).status_code == 200
    assert "robin" in client.text() and "admin" in client.text()
    again = subprocess.run([tipline, "handler", "add", "robin"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already an account" in again.stderr
    verified = subprocess.run([tipline, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "intact" in verified.stdout
    app.extensions["tipline"].redis.lset(keys.AUDIT_TRAIL, 0, b'{"seq": 1, "who": "someone else"}')
    tampered = subprocess.run([tipline, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert tampered.returncode == 1


# -- roles ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/console/admin/accounts", "/console/audit", "/console/hotspots",
                                  "/console/hotspots.svg"])
def test_a_handler_cannot_open_supervisor_or_admin_pages(signed_in: ConsoleClient, path: str) -> None:
    assert signed_in.get(path).status_code == 403


def test_a_handler_cannot_post_to_admin_actions(signed_in: ConsoleClient, console) -> None:
    signed_in.get("/console/")
    assert signed_in.post("/console/admin/accounts", {"name": "mallory", "role": "admin"}).status_code == 403
    assert console.accounts.get("mallory") is None
    assert signed_in.post("/console/admin/accounts/sam/role", {"role": "admin"}).status_code == 403
    assert console.accounts.get("sam").role == "handler"


def test_signed_out_pages_send_you_to_sign_in(app) -> None:
    for path in ("/console/", "/console/tips/12345678901", "/console/audit", "/console/admin/accounts"):
        response = ConsoleClient(app).get(path)
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_a_form_without_its_csrf_token_is_refused(signed_in: ConsoleClient, app) -> None:
    signed_in.get("/console/")
    response = signed_in.post("/console/claim", csrf=False)
    assert response.status_code == 400 and "Form refused" in signed_in.text()
    assert signed_in.post("/console/claim", {"csrf_token": "forged"}, csrf=False).status_code == 400


def test_every_console_answer_carries_the_security_headers_and_hsts_in_production(app, environment) -> None:
    from config.settings import Settings
    from ivr import create_app

    production = create_app(Settings.from_env({**environment, "TIPLINE_ENV": "production"}))
    try:
        for each, hsts in ((app, None), (production, "max-age=31536000; includeSubDomains")):
            client = ConsoleClient(each)
            for response in (client.get("/console/login"), client.post("/console/login", {"name": "nobody"}),
                             client.get("/console/static/console.css")):
                assert response.headers.get("Strict-Transport-Security") == hsts
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Referrer-Policy"] == "same-origin"
                assert response.headers["X-Frame-Options"] == "DENY"
                csp = response.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
                response.close()
    finally:
        production.extensions["tipline"].redis.close()


@pytest.mark.parametrize("referer", ["https://evil.example/console/login", "http://tipline.example.org/console/login",
                                     None])
def test_a_console_post_over_https_from_another_site_is_refused(app, sam: Person, console, referer) -> None:
    client = ConsoleClient(app, sam)
    client.get("/console/login")
    form = {"name": sam.name, "password": sam.password, "code": sam.code()}
    response = client.post("/console/login", form, headers={"Referer": referer or ""})  # "": none sent
    assert response.status_code == 400 and "Form refused" in client.text() and "reload the page" in client.text()
    assert client.get("/console/").status_code == 302  # not signed in
    assert console.audit.entries(count=5) == []  # nothing was tried


def test_webhooks_need_no_csrf_token(twilio) -> None:
    assert a_texted_tip(twilio, SENDER, REPORT)  # signed by Twilio, not by our forms


# -- the work -----------------------------------------------------------------------------------------

def test_claim_read_summarise_and_pass_on(app, twilio, signed_in: ConsoleClient, console, redis_client) -> None:
    reference = a_texted_tip(twilio, SENDER, REPORT)
    assert signed_in.claims_next() == reference
    page = signed_in.get(f"/console/tips/{reference}")
    assert page.status_code == 200 and "grey Golf outside the chip shop" in signed_in.text()
    assert "in review" in signed_in.text()

    summary = "I saw two men selling cocaine from a grey Golf on Mare Street at 22:15."
    assert signed_in.post(f"/console/tips/{reference}/summary",
                          {"summary": summary, "area": "hackney", "category": "drugs"}).status_code == 302
    form = signed_in.get(f"/console/tips/{reference}/pass-on")
    assert "could identify the tipster" in signed_in.text() and "<mark" in signed_in.text()
    version = console.casework.case(reference).summary_version
    refused = signed_in.post(f"/console/tips/{reference}/pass-on", {"partner": "met", "summary_version": version,
                                                                     "parts_seen": "1"})
    assert refused.status_code == 400 and console.casework.case(reference).finished is None
    fingerprints = [f.fingerprint for f in __import__("ivr.console.flags", fromlist=["find_flags"]).find_flags(summary)]
    assert len(fingerprints) >= 2
    passed = signed_in.post(f"/console/tips/{reference}/pass-on",
                            {"partner": "met", "summary_version": version, "confirm": fingerprints,
                             "parts_seen": "1"})
    assert passed.status_code == 302 and passed.headers["Location"].endswith(f"/tips/{reference}/package")
    assert form.status_code == 200

    package = json.loads(signed_in.get(f"/console/tips/{reference}/package.json").get_data())
    assert set(package) == {"reference", "date", "category", "area", "summary", "supplement_to"}
    assert package["supplement_to"] is None  # the first pass-on
    assert package["summary"] == summary and package["area"] == "Hackney" and len(package["date"]) == 10
    printable = signed_in.get(f"/console/tips/{reference}/package").get_data(as_text=True)
    assert "chip shop" not in printable and summary in printable.replace("&#39;", "'")
    assert console.casework.tip(reference).triage == Triage.PASSED_ON
    assert console.casework.holder(reference) is None  # acknowledged: off the queue
    assert signed_in.post(f"/console/tips/{reference}/summary", {"summary": "changed"}).status_code == 302
    assert console.casework.case(reference).summary == summary  # finished: no more edits
    assert scan_redis(redis_client, {"grey Golf on Mare Street", "selling cocaine"}) == []  # ciphertext at rest

    actions = [(e.who, e.action) for e in console.audit.for_tip(reference)]
    assert ("sam", "claim") in actions and ("sam", "view") in actions and ("sam", "edit_summary") in actions
    assert ("sam", "pass_on") in actions and ("sam", "export") in actions
    assert console.audit.verify().ok


def test_urgent_tips_are_claimed_first(app, twilio, signed_in: ConsoleClient) -> None:
    ordinary = a_texted_tip(twilio, SENDER, REPORT, category_digit="1")
    urgent = a_texted_tip(twilio, "+447700900462", URGENT_REPORT, category_digit="3")
    assert signed_in.claims_next() == urgent
    assert signed_in.claims_next() == ordinary
    assert signed_in.claims_next() is None
    assert "No tips are waiting" in signed_in.get("/console/").get_data(as_text=True)


def test_a_handler_cannot_change_a_tip_someone_else_holds_but_keeps_their_draft(app, twilio, sam, alex,
                                                                                 console) -> None:
    reference = a_texted_tip(twilio, SENDER, REPORT)
    first, second = signed_in_as(app, sam), signed_in_as(app, alex)
    assert first.claims_next() == reference
    assert second.claims_next() is None  # leased to sam
    second.get(f"/console/tips/{reference}")
    assert "sam holds it" in second.text()
    for path, form in ((f"/console/tips/{reference}/summary", {"summary": "alex was here", "area": "hackney"}),
                       (f"/console/tips/{reference}/triage", {"triage": Triage.MALICIOUS}),
                       (f"/console/tips/{reference}/notes", {"text": "alex note"}),
                       (f"/console/tips/{reference}/close", {"reason": "malicious", "confirm": "y", "parts_seen": "1"}),
                       (f"/console/tips/{reference}/release", {})):
        second.post(path, form)
        assert second.last.status_code == 302
    case = console.casework.case(reference)
    assert case.summary == "" and case.notes == () and case.finished is None and case.holder == "sam"
    assert console.casework.tip(reference).triage == Triage.IN_REVIEW
    answer = json.loads(second.post(f"/console/tips/{reference}/draft", {"summary": "alex's draft"}).get_data())
    assert answer == {"saved": True, "held": False, "message": "sam holds this tip now; your draft is kept."}
    assert console.casework.draft(reference, "alex") == "alex's draft"


def test_a_lapsed_lease_goes_to_the_next_handler_and_the_first_keeps_their_draft(app, twilio, sam, alex,
                                                                                  console) -> None:
    reference = a_texted_tip(twilio, SENDER, REPORT)
    first, second = signed_in_as(app, sam), signed_in_as(app, alex)
    assert first.claims_next() == reference
    first.post(f"/console/tips/{reference}/draft", {"summary": "Half-written by sam"})
    lease_ms = console.casework.lease_seconds * 1000
    stream, entry = app.extensions["tipline"].redis.hmget(keys.case(reference), "stream", "entry")
    # The lease lapses: make the entry look idle for longer than the lease (XCLAIM ... IDLE).
    app.extensions["tipline"].redis.xclaim(stream, "handlers", "sam", min_idle_time=0, message_ids=[entry],
                                           idle=lease_ms + 1, justid=True)
    assert second.claims_next() == reference
    refused = json.loads(first.post(f"/console/tips/{reference}/draft", {"summary": "Half-written by sam, more"})
                         .get_data())
    assert refused["held"] is False and "alex holds this tip" in refused["message"]
    assert console.casework.draft(reference, "sam") == "Half-written by sam, more"
    second.post(f"/console/tips/{reference}/release")
    assert first.claims_next() == reference
    first.get(f"/console/tips/{reference}")
    assert "Half-written by sam, more" in first.text()


def test_triage_notes_and_duplicates_stay_inside(app, twilio, signed_in: ConsoleClient, console, redis_client) -> None:
    original = a_texted_tip(twilio, SENDER, REPORT)
    copy = a_texted_tip(twilio, "+447700900463", REPORT + " Same van again.")
    assert signed_in.claims_next() == original
    assert signed_in.claims_next() == copy
    signed_in.post(f"/console/tips/{copy}/triage", {"triage": Triage.MALICIOUS})
    signed_in.post(f"/console/tips/{copy}/notes", {"text": "Sounds like the ex-partner again"})
    signed_in.post(f"/console/tips/{copy}/duplicate", {"original": f"{original[:4]} {original[4:]}"})
    case = console.casework.case(copy)
    assert case.duplicate_of == original and console.casework.case(original).duplicates == (copy,)
    assert [n.text for n in case.notes] == ["Sounds like the ex-partner again"] and case.notes[0].author == "sam"
    assert console.casework.tip(copy).triage == Triage.MALICIOUS
    assert scan_redis(redis_client, {"ex-partner"}) == []  # the note is ciphertext
    signed_in.post(f"/console/tips/{copy}/summary", {"summary": "A grey Golf is used to sell drugs.",
                                                     "area": "hackney", "category": "drugs"})
    version = console.casework.case(copy).summary_version
    signed_in.post(f"/console/tips/{copy}/pass-on", {"partner": "met", "summary_version": version, "parts_seen": "1"})
    package = json.loads(signed_in.get(f"/console/tips/{copy}/package.json").get_data())
    assert "ex-partner" not in json.dumps(package) and "malicious" not in json.dumps(package)


@pytest.mark.parametrize("path", ["/console/tips/12345678901", "/console/tips/not-a-reference",
                                  "/console/tips/1234/pass-on", "/console/tips/12345678901/parts/1/audio"])
def test_unknown_references_get_a_clear_404(signed_in: ConsoleClient, path: str) -> None:
    assert signed_in.get(path).status_code == 404
    assert "no tip with that reference" in signed_in.text().lower() or "No such" in signed_in.text()


def test_bad_input_gets_a_clear_answer_never_a_500(app, twilio, signed_in: ConsoleClient, console) -> None:
    reference = a_texted_tip(twilio, SENDER, REPORT)
    signed_in.claims_next()
    huge = signed_in.post(f"/console/tips/{reference}/summary", {"summary": "x" * 5000})
    assert huge.status_code == 400 and "longer than 4000 characters" in signed_in.text()
    assert signed_in.post(f"/console/tips/{reference}/summary",
                          {"summary": "ok", "area": "atlantis"}).status_code == 400
    assert signed_in.post(f"/console/tips/{reference}/triage", {"triage": "deleted"}).status_code == 302
    assert console.casework.tip(reference).triage == Triage.IN_REVIEW
    assert signed_in.post(f"/console/tips/{reference}/duplicate", {"original": reference}).status_code == 302
    assert "cannot be a duplicate of itself" in signed_in.get(f"/console/tips/{reference}").get_data(as_text=True)
    assert signed_in.post(f"/console/tips/{reference}/pass-on", {"partner": "met"}).status_code == 400
    audio = signed_in.get(f"/console/tips/{reference}/parts/1/audio")
    assert audio.status_code == 404 and "transcribed" in signed_in.text()
    assert signed_in.get("/console/search?reference=abc").status_code == 302


def test_a_ten_thousand_character_name_gets_the_login_page_and_the_one_refusal(app, sam: Person, console) -> None:
    client = ConsoleClient(app, sam)
    client.get("/console/login")
    response = client.post("/console/login", {"name": "x" * 10_000, "password": sam.password, "code": sam.code()})
    assert response.status_code == 400 and "<h1>Sign in</h1>" in client.text()
    assert client.text().count("Sign-in failed. Check your name, password and the current code") == 1
    assert client.get("/console/").status_code == 302  # not signed in
    assert "sign_in" not in [e.action for e in console.audit.entries(count=5)]


# -- supervisors and admins ------------------------------------------------------------------------------

def test_a_supervisor_reads_the_audit_trail_reassigns_and_sees_hotspots(app, twilio, sam, alex, console) -> None:
    boss = signed_in_as(app, enrolled(app, "jo", "supervisor"))
    worker = signed_in_as(app, sam)
    references = [a_texted_tip(twilio, f"+44770090047{i}", REPORT + f" Number {i}.") for i in range(4)]
    for reference in references:
        assert worker.claims_next() == reference
        worker.post(f"/console/tips/{reference}/summary", {"summary": "A grey Golf is used to sell drugs.",
                                                           "area": "hackney" if reference != references[3]
                                                           else "camden", "category": "drugs"})
    for reference in references[:3]:
        worker.post(f"/console/tips/{reference}/close", {"reason": "duplicate", "confirm": "y", "parts_seen": "1"})
    boss.get(f"/console/tips/{references[3]}")
    assert boss.post(f"/console/tips/{references[3]}/reassign", {"handler": "alex"}).status_code == 302
    assert console.casework.holder(references[3]) == "alex"
    signed_in_as(app, alex).post(f"/console/tips/{references[3]}/close",
                                 {"reason": "not-crime", "confirm": "y", "parts_seen": "1"})

    page = boss.get("/console/audit")
    assert page.status_code == 200 and "Chain intact" in boss.text() and "reassign" in boss.text()
    hotspots = boss.get("/console/hotspots").get_data(as_text=True)
    assert "<svg" in hotspots and "&lt;3" in hotspots and ">3<" in hotspots  # Hackney 3, Camden 1 (hidden)
    svg = boss.get("/console/hotspots.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


def test_a_plain_handler_cannot_reassign_a_tip(app, twilio, sam, alex, console) -> None:
    reference = a_texted_tip(twilio, SENDER, REPORT)
    holder, other = signed_in_as(app, alex), signed_in_as(app, sam)
    assert holder.claims_next() == reference
    other.get(f"/console/tips/{reference}")
    assert other.post(f"/console/tips/{reference}/reassign", {"handler": "sam"}).status_code == 403
    assert console.casework.holder(reference) == "alex"
    assert "reassign" not in [e.action for e in console.audit.for_tip(reference)]


def test_an_admin_adds_an_account_changes_a_role_and_disables_one(app, sam: Person, console) -> None:
    admin = signed_in_as(app, enrolled(app, "ada", "admin"))
    admin.get("/console/admin/accounts")
    assert admin.post("/console/admin/accounts", {"name": "lee", "role": "handler"}).status_code == 200
    assert "/console/enrol/" in admin.text() and console.accounts.get("lee").status == "pending"
    assert admin.post("/console/admin/accounts", {"name": "Not A Name!", "role": "handler"}).status_code == 400
    admin.post("/console/admin/accounts/ada/role", {"role": "handler"})
    assert console.accounts.get("ada").role == "admin"  # the only admin stays one
    assert "only active admin" in admin.get("/console/admin/accounts").get_data(as_text=True)
    admin.post("/console/admin/accounts/sam/role", {"role": "supervisor"})
    assert console.accounts.get("sam").role == "supervisor"
    admin.post("/console/admin/accounts/sam/disable")
    assert console.accounts.get("sam").status == "disabled"
    assert [e.action for e in console.audit.entries(count=10, who="ada")][:3] == [
        "account_disabled", "role_changed", "account_created"]


def test_the_audit_trail_notices_a_deleted_entry(app, signed_in: ConsoleClient, console, redis_client) -> None:
    signed_in.get("/console/")
    console.audit.append("sam", "view", tip="12345678901")
    console.audit.append("sam", "claim", tip="12345678901")
    assert console.audit.verify().ok
    entries = redis_client.lrange(keys.AUDIT_TRAIL, 0, -1)
    redis_client.lrem(keys.AUDIT_TRAIL, 1, entries[1])
    report = console.audit.verify()
    assert not report.ok and report.problems


def test_nothing_identifying_is_written_by_the_console(app, twilio, signed_in: ConsoleClient, redis_client: redis.Redis,
                                                       log_lines) -> None:
    from tests.privacy import needles_for_number, scan_lines

    reference = a_texted_tip(twilio, SENDER, REPORT)
    signed_in.claims_next()
    signed_in.get(f"/console/tips/{reference}")
    needles = needles_for_number(SENDER)
    assert scan_redis(redis_client, needles) == [] and scan_lines(log_lines.lines, needles) == []


@pytest.mark.slow
def test_a_recording_kept_for_review_is_heard_disguised_then_deleted_once_the_tip_is_closed(
        app, twilio, signed_in: ConsoleClient, console, standin, environment) -> None:
    from dev.phone_audio import speak
    from dev.processes import run_worker_burst
    from tests.calls import leave_a_message

    call = twilio.call("+447700900464")
    reference, _ = leave_a_message(call, "3", "1", audio=speak("Sprzedają narkotyki przy szkole w piątki.", "pl"))
    recording_sid = call.recordings[0].form["RecordingSid"]
    assert run_worker_burst(environment).returncode == 0  # Polish: kept for a person, not guessed
    assert recording_sid in {r.sid for r in standin.recordings()}

    assert signed_in.claims_next() == reference
    assert "audio awaiting review" in signed_in.get(f"/console/tips/{reference}").get_data(as_text=True)
    heard = signed_in.get(f"/console/tips/{reference}/parts/1/audio")
    assert heard.status_code == 200 and heard.mimetype == "audio/wav" and heard.data[:4] == b"RIFF"
    assert heard.headers["Cache-Control"] == "no-store"
    assert ("sam", "listen") in [(e.who, e.action) for e in console.audit.for_tip(reference)]

    signed_in.post(f"/console/tips/{reference}/close", {"reason": "no-information", "confirm": "y", "parts_seen": "1"})
    assert run_worker_burst(environment).returncode == 0
    assert recording_sid not in {r.sid for r in standin.recordings()}  # reviewed: gone at the provider
    assert console.casework.tips.kept_audio(reference, 1) is None
    assert signed_in.get(f"/console/tips/{reference}/parts/1/audio").status_code == 410


def test_a_damaged_audit_trail_stops_the_console_until_an_operator_reseals_it(app, signed_in: ConsoleClient,
                                                                               redis_client, environment) -> None:
    import subprocess
    import sys
    from pathlib import Path

    signed_in.get("/console/")
    redis_client.set(keys.AUDIT_HEAD, b"forged")  # someone covering their tracks
    assert signed_in.post("/console/claim").status_code == 503 and "tipline audit verify" in signed_in.text()
    assert signed_in.get("/console/").status_code == 503  # nothing shown either

    tipline = str(Path(sys.executable).parent / "tipline")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([tipline, "audit", *args], env={**environment, "PATH": str(Path(sys.executable).parent)},
                              capture_output=True, text=True, timeout=60)

    assert cli("reseal").returncode == 2  # --confirm is required
    resealed = cli("reseal", "--confirm")
    assert resealed.returncode == 0 and "archive 1" in resealed.stdout, resealed.stdout + resealed.stderr
    assert redis_client.exists(keys.audit_archive(1))  # the evidence is kept
    assert cli("verify").returncode == 0
    assert signed_in.get("/console/").status_code == 200
    assert cli("reseal", "--confirm").returncode == 1  # intact: nothing to reseal
