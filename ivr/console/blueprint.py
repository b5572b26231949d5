"""The console's blueprint and every hook on it: CSRF, the audit trail's check, headers, caching.

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

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import UserMixin
from flask_wtf.csrf import CSRFProtect

from config.settings import Settings
from ivr.console.cases import CaseworkError, UnknownTip
from ivr.console.casework import Casework
from ivr.console.catalogue import ConsoleCatalogue
from ivr.console.deadlines import Deadlines
from ivr.console.hotspots import HotspotCounts
from ivr.console.questions import Questions
from ivr.core.accounts import Account, AccountStore
from ivr.core.audit import AuditLog
from ivr.core.pin_guard import PinGuard
from ivr.core.tips import ShreddedTip

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
    questions: Questions  # a handler's questions to a tip's tipster, and what the tipster is told
    deadlines: Deadlines  # what is owed to tipsters, and for how long (supervisors)


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
        csrf.protect()  # CSRFError → 400 (the handler `install` registers)


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.update(security_header_values(console().settings.is_production))
    return response


# Registered after check_csrf and security_headers, as when they lived in work_routes:
# before-request hooks run in this order, after-request hooks in the reverse.
@bp.before_request
def audit_trail_intact() -> None:
    """Fail closed: with a damaged audit trail nothing is shown or done (AuditTrailBroken → 503)."""
    if request.endpoint != "console.static":
        console().audit.head()


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# -- refusals: one handler per type, so a route just acts and lets a refusal rise --------------

@bp.errorhandler(UnknownTip)
def unknown_tip(error: UnknownTip) -> ResponseReturnValue:
    return render_template("console/error.html", title="No such tip", message=str(error)), 404


@bp.errorhandler(ShreddedTip)
def shredded_tip(error: ShreddedTip) -> ResponseReturnValue:
    return render_template("console/error.html", title="Tip deleted",
                           message="This tip was deleted under the retention rules; nothing of it can be read."), 410


@bp.errorhandler(CaseworkError)
def casework_refused(error: CaseworkError) -> ResponseReturnValue:
    """Any other refusal of a handler's action (not yours, finished, not ready...): say why on the tip's page."""
    flash(str(error), "error")
    reference = (request.view_args or {}).get("reference")
    return redirect(url_for("console.tip", reference=reference) if reference else url_for("console.dashboard"))


def console() -> Console:
    """The current app's console objects (inside a request)."""
    objects: Console = current_app.extensions["console"]
    return objects
