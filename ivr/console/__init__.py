"""The handlers' console: the web pages call handlers, supervisors and admins use under /console/.

Read top-down: `install(app, core)` here builds the console's objects from the core and
wires the blueprint into the app (sign-in, CSRF, cookie, app-wide error pages);
`blueprint.py` holds the blueprint, every hook on it and one handler per refusal type.
The routes, by audience: `auth_routes` (everyone); `work_routes`, `pass_on_routes` and
`listening_routes` and `question_routes` (handlers); `supervise_routes` (supervisors: audit
trail, hotspots, deadlines, reassign); `admin_routes` (admins). What they work with:
`casework.py`, `cases.py`, `flags.py`, `questions.py`, `hotspots.py`, `deadlines.py`,
`listening.py`, `catalogue.py`, `forms.py`, `roles.py`.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError

from ivr.core import Core
from ivr.core.audit import AuditTrailBroken
from ivr.core.retention import retention_of
from ivr.core.statuses import TipsterStatus


def install(app: Flask, core: Core) -> None:
    """Build the console's objects from the core and register its blueprint and hooks."""
    # Imported here, not above: importing a console module (flags, say) loads no routes.
    from ivr.console import (  # noqa: F401 (routes)
        admin_routes,
        auth_routes,
        client_address,
        listening_routes,
        pass_on_routes,
        question_routes,
        supervise_routes,
        work_routes,
    )
    from ivr.console.blueprint import Console, ConsoleUser, bp, console, csrf
    from ivr.console.casework import Casework
    from ivr.console.catalogue import load_console_catalogue
    from ivr.console.deadlines import Deadlines
    from ivr.console.hotspots import HotspotCounts
    from ivr.console.questions import Questions
    from ivr.console.session_cookie import SessionOnlyWithCookie

    settings = core.settings
    catalogue = load_console_catalogue(core.menus)
    casework = Casework(core.redis, core.tips, catalogue, settings.console_lease_seconds)
    app.extensions["console"] = Console(
        accounts=core.accounts,
        casework=casework,
        audit=core.audit,
        hotspots=HotspotCounts(core.redis),
        catalogue=catalogue,
        settings=settings,
        pin_guard=core.pin_guard,
        questions=Questions(core.redis, core.follow_up, casework, core.menus, catalogue.giveaway_words),
        deadlines=Deadlines(core.redis, core.tips, core.follow_up, settings.feedback_deadline_days,
                            {status: core.menus.catalogue("en").voice.get(f"status_{status}", status)
                             for status in TipsterStatus}, retention_of(core)),
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

    app.session_interface = SessionOnlyWithCookie()
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

    def load_user(login_id: str) -> ConsoleUser | None:
        account = console().accounts.sign_ins.resume(login_id)
        return ConsoleUser(account, login_id) if account else None

    login_manager.user_loader(load_user)

    @app.errorhandler(AuditTrailBroken)
    def audit_trail_broken(error: AuditTrailBroken) -> ResponseReturnValue:
        # Fail closed: nothing is done that could not be recorded.
        return render_template("console/error.html", title="The console has stopped",
                               message="The audit trail is damaged, so nothing can be done until an operator "
                                       "checks it (`tipline audit verify`) and sets it aside "
                                       "(`tipline audit reseal --confirm`)."), 503

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> ResponseReturnValue:
        return render_template("console/error.html", title="Form refused",
                               message="This form had expired or was not sent from the console page. "
                                       "Go back, reload the page and try again."), 400
