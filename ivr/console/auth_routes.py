"""Signing in and out, and enrolment (setting a password and scanning the TOTP secret)."""

from __future__ import annotations

import segno
from flask import flash, make_response, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup

from ivr.console.blueprint import ConsoleUser, bp, console
from ivr.console.forms import ActionForm, EnrolForm, SignInForm
from ivr.console.roles import signed_in
from ivr.core.accounts import NAME_SHAPE, AccountError, SignInRefused, refusal
from ivr.core.sign_in_limits import WINDOW_SECONDS, SignInLocked


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("console.dashboard"))
    form = SignInForm()
    if form.validate_on_submit():
        store = console().accounts
        typed = (form.name.data or "").strip().lower()
        # The trail names an account, never what a stranger typed (a number, a password
        # typed into the wrong box): failures on names nobody has are "(unknown)".
        who = typed if NAME_SHAPE.fullmatch(typed) and store.get(typed) is not None else "(unknown)"
        try:
            account = store.authenticate(form.name.data, form.password.data, form.code.data,
                                         address=request.remote_addr or "")
        except SignInLocked as locked:
            # Not checked, so not recorded one by one: a flood of refused tries would only
            # bury the trail. The failure that started the lock was recorded.
            flash(str(locked), "error")
            response = make_response(render_template("console/login.html", form=form), 429)
            response.headers["Retry-After"] = str(locked.seconds_left)
            return response
        except SignInRefused as refused:
            console().audit.append(who, "sign_in_failed")
            for lock in refused.attempt.locks_if_it_fails:
                console().audit.append(who, "sign_in_locked",
                                       detail=f"{lock.name.lower()} for {WINDOW_SECONDS // 60} min")
            flash(str(refused), "error")
            return render_template("console/login.html", form=form), 401
        session.clear()
        session.permanent = True
        login_user(ConsoleUser(account, store.sign_ins.start(account)))
        console().audit.append(account.name, "sign_in")
        return redirect(url_for("console.dashboard"))
    if form.is_submitted():  # a field missing or too long: nothing to check, the same words
        flash(refusal(), "error")
        return render_template("console/login.html", form=form), 400
    return render_template("console/login.html", form=form), 200


@bp.post("/logout")
@signed_in
def logout() -> ResponseReturnValue:
    if ActionForm().validate_on_submit():
        console().accounts.sign_ins.end(current_user.login_id)
        console().audit.append(current_user.name, "sign_out")
        logout_user()
        session.clear()
        flash("You have signed out.", "info")
    return redirect(url_for("console.login"))


@bp.route("/enrol/<token>", methods=["GET", "POST"])
def enrol(token: str) -> ResponseReturnValue:
    store = console().accounts
    try:
        enrolment = store.enrolment(token)
    except AccountError as invalid:
        return render_template("console/error.html", title="Enrolment link not valid", message=str(invalid)), 404
    form = EnrolForm()
    status = 200
    if form.validate_on_submit():
        if form.password.data != form.password_again.data:
            flash("The two passwords are not the same.", "error")
            status = 400
        else:
            try:
                account = store.enrol(token, form.password.data, form.code.data)
            except AccountError as refused:
                flash(str(refused), "error")
                status = 400
            else:
                console().audit.append(account.name, "account_enrolled", detail=f"role={account.role}")
                flash("Your account is ready. Sign in with your password and a new code.", "info")
                return redirect(url_for("console.login"))
    elif form.is_submitted():
        status = 400
    qr = segno.make(enrolment.provisioning_uri, error="m")
    svg = qr.svg_inline(scale=4, dark="#111", light="#fff")
    qr_svg = Markup(svg)  # nosec B704  # segno's own SVG of the provisioning URI, which it escapes
    return render_template("console/enrol.html", form=form, enrolment=enrolment, qr_svg=qr_svg), status
