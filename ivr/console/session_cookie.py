"""The console's session cookie, opened only when the request carries one.

Flask opens the session for every request, building a fresh signing serializer each time;
the webhooks (most requests during an appeal) never carry the console's cookie, and
signing or checking is only needed when one is sent or a session is saved.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class SessionOnlyWithCookie(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()  # what Flask gives for no cookie, without the serializer
        return super().open_session(app, request)
