"""Asking the tipster a question (checked for discretion first), and withdrawing it.

The audit trail records each question by its number only ("ask", "withdraw"): never its
text, which, like a summary, belongs to the tip and is sealed with it.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ivr.console.blueprint import bp, console
from ivr.console.cases import CaseworkError, FlagsUnresolved, things
from ivr.console.flags import find_flags
from ivr.console.forms import QuestionForm, WithdrawForm
from ivr.console.roles import requires


@bp.route("/tips/<reference>/question", methods=["GET", "POST"])
@requires("handler")
def question(reference: str) -> ResponseReturnValue:
    """The question page: the form, what it must not say, and why a refusal refused it."""
    casework, questions = console().casework, console().questions
    tip = casework.tip(reference)
    form = QuestionForm()
    status = 200
    if form.validate_on_submit():
        try:
            asked = questions.ask(reference, current_user.name, form.text.data,
                                  set(request.form.getlist("confirm")))
        except FlagsUnresolved:
            status = 400  # the page says so once, above the flags to confirm
        except CaseworkError as refused:  # the text stays in the form, to be edited
            flash(str(refused), "error")
            status = 400
        else:
            console().audit.append(current_user.name, "ask", tip=reference, detail=f"question={asked.number}")
            flash("Your question is waiting for the tipster: they hear it when they call or text back.", "info")
            return redirect(url_for("console.tip", reference=reference))
    elif form.is_submitted():
        flash("Write the question first.", "error")
        status = 400
    text = form.text.data or ""
    case = casework.case(reference)
    return render_template(
        "console/question.html", tip=tip, form=form, flags=find_flags(text) if text else [],
        confirmed=set(request.form.getlist("confirm")), mine=case.holder == current_user.name and not case.finished,
        waiting=questions.waiting(reference), withdraw_form=WithdrawForm(),
        under_attack=console().pin_guard.under_attack(reference),
        fits=questions.fit_description(tip.language, text), things=things), status


@bp.post("/tips/<reference>/question/withdraw")
@requires("handler")
def withdraw_question(reference: str) -> ResponseReturnValue:
    form = WithdrawForm()
    console().casework.tip(reference)
    if not form.validate_on_submit():
        raise CaseworkError("Choose the question to withdraw.")
    console().questions.withdraw(reference, current_user.name, form.number.data)
    console().audit.append(current_user.name, "withdraw", tip=reference, detail=f"question={form.number.data}")
    flash("The question is withdrawn: the tipster will not hear it.", "info")
    return redirect(url_for("console.tip", reference=reference))
