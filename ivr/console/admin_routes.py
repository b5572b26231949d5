"""An admin's page: accounts and roles (the `tipline handler` command does the same from a terminal)."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ivr.console.blueprint import bp, console
from ivr.console.forms import ActionForm, NewAccountForm, RoleForm
from ivr.console.roles import requires
from ivr.core.accounts import AccountError


def enrolment_url(token: str) -> str:
    return f"{console().settings.public_base_url}/console/enrol/{token}"


@bp.route("/admin/accounts", methods=["GET", "POST"])
@requires("admin")
def accounts() -> ResponseReturnValue:
    form = NewAccountForm()
    link = None
    status = 200
    if form.validate_on_submit():
        try:
            token = console().accounts.create(form.name.data, form.role.data)
        except AccountError as refused:
            flash(str(refused), "error")
            status = 400
        else:
            link = enrolment_url(token)
            console().audit.append(current_user.name, "account_created",
                                   detail=f"name={form.name.data} role={form.role.data}")
    elif form.is_submitted():
        flash("; ".join(e for errs in form.errors.values() for e in errs), "error")
        status = 400
    return render_template("console/accounts.html", form=form, accounts=console().accounts.all(), link=link,
                           role_form=RoleForm(), action_form=ActionForm()), status


def _account_change(change: Callable[[], object], action: str, detail: str, done: str) -> ResponseReturnValue:
    """Do an admin's change to an account, audit it and say so; or say why it was refused."""
    try:
        change()
    except AccountError as refused:
        flash(str(refused), "error")
    else:
        console().audit.append(current_user.name, action, detail=detail)
        flash(done, "info")
    return redirect(url_for("console.accounts"))


@bp.post("/admin/accounts/<name>/role")
@requires("admin")
def change_role(name: str) -> ResponseReturnValue:
    form = RoleForm()
    if not form.validate_on_submit():
        return redirect(url_for("console.accounts"))
    return _account_change(lambda: console().accounts.set_role(name, form.role.data), "role_changed",
                           f"name={name} role={form.role.data}", f"{name} is now {form.role.data}.")


@bp.post("/admin/accounts/<name>/disable")
@requires("admin")
def disable(name: str) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("console.accounts"))
    if name == current_user.name:
        flash("You cannot disable your own account.", "error")
        return redirect(url_for("console.accounts"))
    return _account_change(lambda: console().accounts.disable(name), "account_disabled", f"name={name}",
                           f"{name} is disabled and signed out everywhere.")


@bp.post("/admin/accounts/<name>/enrolment")
@requires("admin")
def new_enrolment(name: str) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("console.accounts"))
    try:
        token = console().accounts.new_enrolment_link(name)
    except AccountError as refused:
        flash(str(refused), "error")
        return redirect(url_for("console.accounts"))
    console().audit.append(current_user.name, "account_created", detail=f"name={name} new enrolment link")
    return render_template("console/accounts.html", form=NewAccountForm(), accounts=console().accounts.all(),
                           link=enrolment_url(token), role_form=RoleForm(), action_form=ActionForm())
