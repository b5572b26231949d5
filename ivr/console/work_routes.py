"""A handler's pages: the queue, a tip, and everything done to it.

Every view of a tip and every change is written to the audit trail. Changes need the
lease (`Casework.renew`); a refused change says who holds the tip now. Pages are never
cached (`Cache-Control: no-store`): a transcript must not stay on a shared computer.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm

from ivr.console.blueprint import bp, console
from ivr.console.cases import HANDLER_TRIAGE, Case, CaseworkError, NotYours, received_day
from ivr.console.forms import (
    ActionForm,
    CloseForm,
    DuplicateForm,
    NoteForm,
    QuestionForm,
    ReassignForm,
    SummaryForm,
    TriageForm,
    WithdrawForm,
    choices,
)
from ivr.console.listening import AUDIO_KEPT_STATUSES
from ivr.console.roles import requires
from ivr.core.pin_guard import LOCK_MEMORY_SECONDS
from ivr.core.references import is_valid_reference
from ivr.core.tips import Tip

# -- the queue ---------------------------------------------------------------------------------

@bp.get("/")
@requires("handler")
def dashboard() -> ResponseReturnValue:
    casework = console().casework
    mine = casework.held_by(current_user.name)
    return render_template("console/dashboard.html", waiting=casework.waiting(), mine=mine,
                           came_back=casework.with_news(mine), form=ActionForm())


@bp.post("/claim")
@requires("handler")
def claim() -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("console.dashboard"))
    reference = console().casework.claim_next(current_user.name)
    if reference is None:
        flash("No tips are waiting. Well done.", "info")
        return redirect(url_for("console.dashboard"))
    console().audit.append(current_user.name, "claim", tip=reference)
    return redirect(url_for("console.tip", reference=reference))


@bp.get("/search")
@requires("handler")
def search() -> ResponseReturnValue:
    reference = "".join(ch for ch in request.args.get("reference", "") if ch.isdigit())
    if not is_valid_reference(reference):
        flash("A reference is 11 digits (spaces and dashes are fine). Check it and try again.", "error")
        return redirect(url_for("console.dashboard"))
    return redirect(url_for("console.tip", reference=reference))


# -- a tip -------------------------------------------------------------------------------------

@bp.get("/tips/<reference>")
@requires("handler")
def tip(reference: str) -> ResponseReturnValue:
    """A tip's page. Its holder opening a tip the tipster came back to takes it (the lease is
    renewed, the dashboard stops marking it), and each answer first shown to the holder is
    recorded ("read_answer", once per answer: every view is recorded as "view" anyway, and
    the trail should say when the handler who must act on an answer first saw it)."""
    casework, audit = console().casework, console().audit
    if casework.take_news(reference, current_user.name):  # before reading: the page shows what it took
        audit.append(current_user.name, "renew", tip=reference, detail="the tipster came back")
    tip_record = casework.tip(reference)
    case = casework.case(reference)
    audit.append(current_user.name, "view", tip=reference)
    if case.holder == current_user.name and not case.finished:
        for part in console().questions.answers_first_shown(tip_record):
            audit.append(current_user.name, "read_answer", tip=reference,
                         detail=f"question={part.answers} part={part.index}")
    return render_tip_page(tip_record, case)


def render_tip_page(tip_record: Tip, case: Case, status: int = 200,
                    summary_form: SummaryForm | None = None) -> ResponseReturnValue:
    catalogue, casework = console().catalogue, console().casework
    mine = case.holder == current_user.name and not case.finished
    draft = casework.draft(case.reference, current_user.name)
    summary_form = summary_form or SummaryForm(summary=draft if draft is not None else case.summary,
                                               area=case.area or "", category=case.category or tip_record.category)
    _area_and_category_choices(summary_form)
    questions = console().questions
    return render_template(
        "console/tip.html", tip=tip_record, case=case, mine=mine, draft_pending=draft is not None,
        asked=questions.on_tip(tip_record), waiting=questions.waiting(tip_record.reference),
        answer_parts={part.index for part in tip_record.parts if part.answers},
        status_words=questions.status_words(tip_record), question_form=QuestionForm(),
        withdraw_form=WithdrawForm(), fits=questions.fit_description(tip_record.language),
        close_form=_close_choices(CloseForm(parts_seen=len(tip_record.parts))),
        audio_kept_statuses=AUDIO_KEPT_STATUSES, catalogue=catalogue, history=console().audit.for_tip(case.reference),
        lease_left=casework.lease_left_seconds(case.reference) if mine else None,
        summary_form=summary_form, triage_form=_triage_choices(TriageForm(triage=tip_record.triage)),
        note_form=NoteForm(),
        duplicate_form=DuplicateForm(), action_form=ActionForm(),
        reassign_form=ReassignForm(), received_day=received_day(tip_record).isoformat(),
        under_attack=console().pin_guard.under_attack(tip_record.reference),
        attack_days=LOCK_MEMORY_SECONDS // (24 * 3600),
    ), status


def _area_and_category_choices(form: SummaryForm) -> None:
    catalogue = console().catalogue
    form.area.choices = choices([("", "Choose an area"), *catalogue.areas.items()])
    form.category.choices = choices([("", "Choose a category"), *catalogue.categories.items()])


def _close_choices(form: CloseForm) -> CloseForm:
    """No reason preselected: the placeholder's empty value does not validate."""
    form.reason.choices = choices([("", "Choose a reason"), *console().catalogue.close_reasons.items()])
    return form


def _triage_choices(form: TriageForm) -> TriageForm:
    """The statuses a handler sets by hand: the code is posted, the catalogue's words shown."""
    form.triage.choices = choices((t, console().catalogue.triage[t].capitalize()) for t in HANDLER_TRIAGE)
    return form


def _changed(reference: str, action: str, detail: str = "") -> ResponseReturnValue:
    console().audit.append(current_user.name, action, tip=reference, detail=detail)
    return redirect(url_for("console.tip", reference=reference))


@bp.post("/tips/<reference>/draft")
@requires("handler")
def save_draft(reference: str) -> ResponseReturnValue:
    """Called by the page as the handler types: keeps the draft, renews the lease."""
    text = request.form.get("summary", "")
    try:
        held = console().casework.save_draft(reference, current_user.name, text)
    except CaseworkError as error:
        return jsonify(saved=False, message=str(error)), 400
    if not held:
        holder = console().casework.holder(reference)
        return jsonify(saved=True, held=False, message=str(NotYours(holder)))
    return jsonify(saved=True, held=True, message="Draft saved.")


@bp.post("/tips/<reference>/summary")
@requires("handler")
def save_summary(reference: str) -> ResponseReturnValue:
    casework = console().casework
    form = SummaryForm()
    _area_and_category_choices(form)
    if not form.validate_on_submit():
        flash("The summary could not be saved: " + "; ".join(e for errs in form.errors.values() for e in errs), "error")
        return render_tip_page(casework.tip(reference), casework.case(reference), status=400, summary_form=form)
    try:
        casework.save_summary(reference, current_user.name, form.summary.data or "", form.area.data or None,
                              form.category.data or None)
    except CaseworkError:
        casework.save_draft(reference, current_user.name, form.summary.data or "")  # nothing typed is lost
        raise  # refused: the blueprint's handler says why
    flash("Summary saved.", "info")
    return _changed(reference, "edit_summary",
                    detail=f"area={form.area.data or '-'} category={form.category.data or '-'}")


def _act(reference: str, form: FlaskForm, invalid: str, change: Callable[[], None], action: str,
         detail: str = "") -> ResponseReturnValue:
    """A holder's change from a form: done and audited, or refused (CaseworkError) with the reason."""
    if not form.validate_on_submit():
        raise CaseworkError(invalid)
    change()
    return _changed(reference, action, detail)


@bp.post("/tips/<reference>/triage")
@requires("handler")
def set_triage(reference: str) -> ResponseReturnValue:
    form = _triage_choices(TriageForm())
    words = console().catalogue.triage.get(form.triage.data or "")  # the audit trail keeps the words people read
    return _act(reference, form, "Choose a triage status from the list.",
                lambda: console().casework.set_triage(reference, current_user.name, form.triage.data),
                "triage", detail=f"status={words}")


@bp.post("/tips/<reference>/notes")
@requires("handler")
def add_note(reference: str) -> ResponseReturnValue:
    form = NoteForm()
    return _act(reference, form, "A note needs some text (at most 2,000 characters).",
                lambda: console().casework.add_note(reference, current_user.name, form.text.data), "note")


@bp.post("/tips/<reference>/duplicate")
@requires("handler")
def link_duplicate(reference: str) -> ResponseReturnValue:
    form = DuplicateForm()
    original = "".join(ch for ch in form.original.data or "" if ch.isdigit())
    return _act(reference, form, "Give the reference of the tip this one duplicates.",
                lambda: console().casework.link_duplicate(reference, current_user.name, original),
                "link_duplicate", detail=f"of={original}")


@bp.post("/tips/<reference>/release")
@requires("handler")
def release(reference: str) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("console.tip", reference=reference))
    console().casework.release(reference, current_user.name)
    console().audit.append(current_user.name, "release", tip=reference)
    flash(f"Tip {reference} is back in the queue.", "info")
    return redirect(url_for("console.dashboard"))


@bp.post("/tips/<reference>/close")
@requires("handler")
def close(reference: str) -> ResponseReturnValue:
    form = _close_choices(CloseForm())
    if not form.validate_on_submit():
        if form.parts_seen.errors:
            raise CaseworkError("This form is out of date: reload the tip and try again.")
        raise CaseworkError("Choose a reason for closing it, and tick “Yes, close this tip”.")
    console().casework.close(reference, current_user.name, form.reason.data, form.parts_seen.data)
    flash(f"Tip {reference} is closed.", "info")
    console().audit.append(current_user.name, "close", tip=reference, detail=f"reason={form.reason.data}")
    return redirect(url_for("console.dashboard"))
