"""People at the console, for tests: accounts made and enrolled as an admin and the person
would, and a signed-in browser-less client that sends forms with their CSRF token.

A TOTP code is accepted once, so enrolment uses the previous step's code and the first
sign-in the current one; `Person.code(steps_ahead)` gives later ones.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.core.one_time_codes import TOTP_STEP_SECONDS

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
ENROL_PATH = re.compile(r"/console/enrol/[A-Za-z0-9_.\-]+")
# The console's cookie is Secure: the test client sends it only over https.
CONSOLE_ORIGIN = "https://tipline.example.org"


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    password: str
    totp_secret: str

    def code(self, steps_ahead: int = 0) -> str:
        return pyotp.TOTP(self.totp_secret).at(time.time() + steps_ahead * TOTP_STEP_SECONDS)


def enrolled(app: Flask, name: str, role: str = "handler") -> Person:
    """An account made and enrolled (the previous step's code), ready to sign in."""
    accounts = app.extensions["console"].accounts
    token = accounts.create(name, role)
    enrolment = accounts.enrolment(token)
    password = f"{name} correct horse {secrets.token_hex(4)}".replace(name, "pw")
    accounts.enrol(token, password, pyotp.TOTP(enrolment.totp_secret).at(time.time() - TOTP_STEP_SECONDS))
    return Person(name=name, role=role, password=password, totp_secret=enrolment.totp_secret)


class ConsoleClient:
    """A person's browser without a browser: pages by path, forms with the page's CSRF token."""

    def __init__(self, app: Flask, person: Person | None = None, address: str = "127.0.0.1") -> None:
        self.client: FlaskClient = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address  # where the browser is, as the app sees it
        self.person = person
        self.last: TestResponse | None = None
        self._csrf = ""

    def get(self, path: str, **kwargs) -> TestResponse:
        self.last = self.client.get(path, base_url=CONSOLE_ORIGIN, **kwargs)
        found = CSRF_META.search(self.last.get_data(as_text=True)) if self.last.mimetype == "text/html" else None
        if found:
            self._csrf = found.group(1)
        return self.last

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kwargs) -> TestResponse:
        if csrf and not self._csrf:
            self.get("/console/login")
        form = {**({"csrf_token": self._csrf} if csrf else {}), **(data or {})}
        headers = {"Referer": CONSOLE_ORIGIN + path, **kwargs.pop("headers", {})}  # as a browser sends it
        self.last = self.client.post(path, data=form, base_url=CONSOLE_ORIGIN, headers=headers, **kwargs)
        return self.last

    def signs_in(self, code: str | None = None, password: str | None = None) -> TestResponse:
        assert self.person is not None
        self.get("/console/login")
        response = self.post("/console/login", {"name": self.person.name, "password": password or self.person.password,
                                                 "code": code or self.person.code()})
        if response.status_code == 302:
            self.get("/console/")  # signing in starts a new session: pick up its CSRF token
            self.last = response
        return response

    def claims_next(self) -> str | None:
        response = self.post("/console/claim")
        location = response.headers.get("Location", "")
        return location.rsplit("/", 1)[1] if "/console/tips/" in location else None

    def text(self) -> str:
        assert self.last is not None
        return self.last.get_data(as_text=True)


def a_texted_tip(twilio, number: str, report: str, category_digit: str = "1") -> str:
    """A tip as a tipster texts it (one long report, a topic, DONE); returns its reference."""
    from dev.twilio.texts import Phone

    phone = Phone(twilio, number)
    reply = phone.sends(report)
    found = re.search(r"(\d{11})", reply)
    assert found, f"no reference in {reply!r}"
    phone.sends(category_digit)
    phone.sends("DONE")
    return found.group(1)
