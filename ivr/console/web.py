"""Wiring the console into the app: its blueprint, sign-in, CSRF, cookie and headers.

The console shares the app with Twilio's webhooks but not their rules: its cookie is
scoped to /console, Secure, HttpOnly and SameSite=Strict and lasts only the idle
timeout; every form carries a CSRF token (flask-wtf; the webhooks are signed by Twilio
instead); every console response carries a strict Content-Security-Policy and the other
headers flask-talisman sets: scripts and styles only from our own files, nothing inline,
so a transcript holding a script cannot run in a handler's browser even if escaping
failed. Both are hooked to the console's blueprint, not the app, so Twilio's webhooks
(the 3 a.m. path) pay nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFError, CSRFProtect

from config.settings import Settings
from ivr.console import client_address
from ivr.core.accounts import Account, AccountStore
from ivr.core.audit import AuditLog, AuditTrailBroken
from ivr.console.casework import Casework
from ivr.console.hotspots import HotspotCounts
from ivr.console.catalogue import ConsoleCatalogue, load_console_catalogue
from ivr.core import Core
from ivr.core.pin_guard import PinGuard

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

CONTENT_SECURITY_POLICY = "; ".join(f"{directive} {sources}" for directive, sources in {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "media-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}.items())


def security_header_values(production: bool) -> dict[str, str]:
    """What flask-talisman would set, for the console's responses only."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # same-origin: the CSRF check over https compares the Referer with our host,
        # and no console URL (it holds a reference) is ever sent to another site.
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if production:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


@dataclass(frozen=True)
class Console:
    """The console's long-lived objects, built once per app."""

    accounts: AccountStore
    casework: Casework
    audit: AuditLog
    hotspots: HotspotCounts
    catalogue: ConsoleCatalogue
    settings: Settings
    pin_guard: PinGuard  # whether a tip's reference is under attack (its PIN being guessed)


class ConsoleUser(UserMixin):
    """A signed-in browser: the account, and the login id its cookie carries."""

    def __init__(self, account: Account, login_id: str) -> None:
        self.account = account
        self.login_id = login_id

    def get_id(self) -> str:
        return self.login_id

    @property
    def name(self) -> str:
        return self.account.name

    def has_role(self, role: str) -> bool:
        return self.account.has_role(role)


# CSRF and the security headers are the console's alone: installed app-wide (as
# CSRFProtect and flask-talisman do by default) they would run on every Twilio webhook
# too, measured at about 15% of a webhook's CPU.
csrf = CSRFProtect()


@bp.before_request
def check_csrf() -> None:
    if request.method in current_app.config["WTF_CSRF_METHODS"]:
        csrf.protect()  # CSRFError → 400 (install's handler)


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.update(security_header_values(console().settings.is_production))
    return response


def console() -> Console:
    return current_app.extensions["console"]


def install(app: Flask, core: Core) -> None:
    """Build the console's objects from the core and register its blueprint and hooks."""
    settings = core.settings
    catalogue = load_console_catalogue(core.menus)
    app.extensions["console"] = Console(
        accounts=core.accounts,
        casework=Casework(core.redis, core.tips, catalogue, settings.console_lease_seconds),
        audit=core.audit,
        hotspots=HotspotCounts(core.redis),
        catalogue=catalogue,
        settings=settings,
        pin_guard=core.pin_guard,
    )
    app.config.update(
        SESSION_COOKIE_NAME="tipline_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.console_idle_seconds),
        SESSION_REFRESH_EACH_REQUEST=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (idle-limited) session
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )

    from ivr.console import (admin_routes, auth_routes, pass_on_routes, supervise_routes,  # noqa: F401 (routes)
                             work_routes)

    app.register_blueprint(bp)
    client_address.install(app, settings.console_trusted_proxies)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked by the console's own hook (check_csrf)
    csrf.init_app(app)

    login_manager = LoginManager(app)
    # No remember-me cookies here, so its app-wide hook (which opens the session on every
    # Twilio webhook) has nothing to do.
    app.after_request_funcs[None].remove(login_manager._update_remember_cookie)
    login_manager.login_view = "console.login"
    login_manager.login_message = "Please sign in."
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(login_id: str) -> ConsoleUser | None:
        account = console().accounts.sign_ins.resume(login_id)
        return ConsoleUser(account, login_id) if account else None

    @app.errorhandler(AuditTrailBroken)
    def audit_trail_broken(error: AuditTrailBroken):  # type: ignore[no-untyped-def]
        # Fail closed: nothing is done that could not be recorded.
        return render_template("console/error.html", title="The console has stopped",
                               message="The audit trail is damaged, so nothing can be done until an operator "
                                       "checks it (`tipline audit verify`) and sets it aside "
                                       "(`tipline audit reseal --confirm`)."), 503

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError):  # type: ignore[no-untyped-def]
        return render_template("console/error.html", title="Form refused",
                               message="This form had expired or was not sent from the console page. "
                                       "Go back, reload the page and try again."), 400
