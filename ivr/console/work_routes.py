"""A handler's pages: the queue, a tip, and everything done to it.

Every view of a tip and every change is written to the audit trail. Changes need the
lease (`Casework.renew`); a refused change says who holds the tip now. Pages are never
cached (`Cache-Control: no-store`): a transcript must not stay on a shared computer.
"""

from __future__ import annotations

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ivr.console.casework import (FINISHED, Case, CaseworkError, FlagsUnresolved, NotYours, UnknownTip,
                                  received_day)
from ivr.console.flags import find_flags
from ivr.console.forms import (ActionForm, CloseForm, DuplicateForm, NoteForm, PassOnForm, ReassignForm,
                               SummaryForm, TriageForm, choices)
from ivr.console.listening import NothingToHear, disguised_recording
from ivr.console.roles import requires
from ivr.console.web import bp, console
from ivr.provider import Provider
from ivr.provider_errors import ProviderError
from ivr.references import is_valid_reference
from ivr.tips import AWAITING_LANGUAGE, AWAITING_TRANSCRIPT, NO_SPEECH, TRANSCRIPTION_FAILED, ShreddedTip

PART_STATUS_WORDS = {
    AWAITING_TRANSCRIPT: "Awaiting transcript",
    AWAITING_LANGUAGE: "Awaiting transcription in its language; audio awaiting review",
    NO_SPEECH: "No speech detected",
    TRANSCRIPTION_FAILED: "Transcription failed; audio awaiting review",
}


@bp.before_request
def audit_trail_intact() -> None:
    """Fail closed: with a damaged audit trail nothing is shown or done (AuditTrailBroken → 503)."""
    if request.endpoint != "console.static":
        console().audit.head()


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(UnknownTip)
def unknown_tip(error: UnknownTip):  # type: ignore[no-untyped-def]
    return render_template("console/error.html", title="No such tip", message=str(error)), 404


@bp.errorhandler(ShreddedTip)
def shredded_tip(error: ShreddedTip):  # type: ignore[no-untyped-def]
    return render_template("console/error.html", title="Tip deleted",
                           message="This tip was deleted under the retention rules; nothing of it can be read."), 410


# -- the queue ---------------------------------------------------------------------------------

@bp.get("/")
@requires("handler")
def dashboard():  # type: ignore[no-untyped-def]
    casework = console().casework
    return render_template("console/dashboard.html", waiting=casework.waiting(), mine=casework.held_by(current_user.name),
                           form=ActionForm())


@bp.post("/claim")
@requires("handler")
def claim():  # type: ignore[no-untyped-def]
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
def search():  # type: ignore[no-untyped-def]
    reference = "".join(ch for ch in request.args.get("reference", "") if ch.isdigit())
    if not is_valid_reference(reference):
        flash("A reference is 11 digits (spaces and dashes are fine). Check it and try again.", "error")
        return redirect(url_for("console.dashboard"))
    return redirect(url_for("console.tip", reference=reference))


# -- a tip -------------------------------------------------------------------------------------

@bp.get("/tips/<reference>")
@requires("handler")
def tip(reference: str):  # type: ignore[no-untyped-def]
    casework = console().casework
    tip_record = casework.tip(reference)
    case = casework.case(reference)
    console().audit.append(current_user.name, "view", tip=reference)
    return render_tip_page(tip_record, case)


def render_tip_page(tip_record, case: Case, status: int = 200, summary_form: SummaryForm | None = None):  # type: ignore[no-untyped-def]
    catalogue, casework = console().catalogue, console().casework
    mine = case.holder == current_user.name and not case.finished
    draft = casework.draft(case.reference, current_user.name)
    summary_form = summary_form or SummaryForm(summary=draft if draft is not None else case.summary,
                                               area=case.area or "", category=case.category or tip_record.category)
    _area_and_category_choices(summary_form)
    pass_on_form, close_form = PassOnForm(), CloseForm()
    pass_on_form.partner.choices = choices(catalogue.partners.items())
    close_form.reason.choices = choices(catalogue.close_reasons.items())
    return render_template(
        "console/tip.html", tip=tip_record, case=case, mine=mine, draft_pending=draft is not None,
        part_words=PART_STATUS_WORDS, catalogue=catalogue, history=console().audit.for_tip(case.reference),
        lease_left=casework.lease_left_seconds(case.reference) if mine else None,
        summary_form=summary_form, triage_form=TriageForm(triage=tip_record.triage), note_form=NoteForm(),
        duplicate_form=DuplicateForm(), close_form=close_form, action_form=ActionForm(),
        reassign_form=ReassignForm(), received_day=received_day(tip_record).isoformat(),
    ), status


def _area_and_category_choices(form: SummaryForm) -> None:
    catalogue = console().catalogue
    form.area.choices = choices([("", "Choose an area"), *catalogue.areas.items()])
    form.category.choices = choices([("", "Choose a category"), *catalogue.categories.items()])


def _changed(reference: str, action: str, detail: str = "") -> Response:
    console().audit.append(current_user.name, action, tip=reference, detail=detail)
    return redirect(url_for("console.tip", reference=reference))


def _refused(reference: str, error: CaseworkError) -> Response:
    flash(str(error), "error")
    return redirect(url_for("console.tip", reference=reference))


@bp.post("/tips/<reference>/draft")
@requires("handler")
def save_draft(reference: str):  # type: ignore[no-untyped-def]
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
def save_summary(reference: str):  # type: ignore[no-untyped-def]
    casework = console().casework
    form = SummaryForm()
    _area_and_category_choices(form)
    if not form.validate_on_submit():
        flash("The summary could not be saved: " + "; ".join(e for errs in form.errors.values() for e in errs), "error")
        return render_tip_page(casework.tip(reference), casework.case(reference), status=400, summary_form=form)
    try:
        casework.save_summary(reference, current_user.name, form.summary.data or "", form.area.data or None,
                              form.category.data or None)
    except CaseworkError as error:
        casework.save_draft(reference, current_user.name, form.summary.data or "")  # nothing typed is lost
        return _refused(reference, error)
    flash("Summary saved.", "info")
    return _changed(reference, "edit_summary", detail=f"area={form.area.data or '-'} category={form.category.data or '-'}")


@bp.post("/tips/<reference>/triage")
@requires("handler")
def set_triage(reference: str):  # type: ignore[no-untyped-def]
    form = TriageForm()
    if not form.validate_on_submit():
        return _refused(reference, CaseworkError("Choose a triage status from the list."))
    try:
        console().casework.set_triage(reference, current_user.name, form.triage.data)
    except CaseworkError as error:
        return _refused(reference, error)
    return _changed(reference, "triage", detail=f"status={form.triage.data}")


@bp.post("/tips/<reference>/notes")
@requires("handler")
def add_note(reference: str):  # type: ignore[no-untyped-def]
    form = NoteForm()
    if not form.validate_on_submit():
        return _refused(reference, CaseworkError("A note needs some text (at most 2,000 characters)."))
    try:
        console().casework.add_note(reference, current_user.name, form.text.data)
    except CaseworkError as error:
        return _refused(reference, error)
    return _changed(reference, "note")


@bp.post("/tips/<reference>/duplicate")
@requires("handler")
def link_duplicate(reference: str):  # type: ignore[no-untyped-def]
    form = DuplicateForm()
    if not form.validate_on_submit():
        return _refused(reference, CaseworkError("Give the reference of the tip this one duplicates."))
    try:
        console().casework.link_duplicate(reference, current_user.name, form.original.data)
    except CaseworkError as error:
        return _refused(reference, error)
    return _changed(reference, "link_duplicate", detail=f"of={''.join(c for c in form.original.data if c.isdigit())}")


@bp.post("/tips/<reference>/release")
@requires("handler")
def release(reference: str):  # type: ignore[no-untyped-def]
    if not ActionForm().validate_on_submit():
        return redirect(url_for("console.tip", reference=reference))
    try:
        console().casework.release(reference, current_user.name)
    except CaseworkError as error:
        return _refused(reference, error)
    console().audit.append(current_user.name, "release", tip=reference)
    flash(f"Tip {reference} is back in the queue.", "info")
    return redirect(url_for("console.dashboard"))


@bp.post("/tips/<reference>/close")
@requires("handler")
def close(reference: str):  # type: ignore[no-untyped-def]
    form = CloseForm()
    form.reason.choices = choices(console().catalogue.close_reasons.items())
    if not form.validate_on_submit():
        return _refused(reference, CaseworkError("Choose a reason for closing it."))
    try:
        console().casework.close(reference, current_user.name, form.reason.data)
    except CaseworkError as error:
        return _refused(reference, error)
    flash(f"Tip {reference} is closed.", "info")
    console().audit.append(current_user.name, "close", tip=reference, detail=f"reason={form.reason.data}")
    return redirect(url_for("console.dashboard"))


# -- passing on ----------------------------------------------------------------------------------

@bp.route("/tips/<reference>/pass-on", methods=["GET", "POST"])
@requires("handler")
def pass_on(reference: str):  # type: ignore[no-untyped-def]
    casework = console().casework
    casework.tip(reference)
    form = PassOnForm()
    form.partner.choices = choices(console().catalogue.partners.items())
    case = casework.case(reference)
    status = 200
    if form.validate_on_submit():
        confirmed = set(request.form.getlist("confirm"))
        try:
            casework.pass_on(reference, current_user.name, form.partner.data, confirmed, form.summary_version.data)
        except FlagsUnresolved as unresolved:
            flash(str(unresolved), "error")
            status = 400
        except CaseworkError as error:
            flash(str(error), "error")
            status = 400
        else:
            console().audit.append(current_user.name, "pass_on", tip=reference, detail=f"partner={form.partner.data}")
            flash(f"Tip {reference} was passed on to {console().catalogue.partners[form.partner.data]}.", "info")
            return redirect(url_for("console.package", reference=reference))
    elif form.is_submitted():
        flash("Choose who it is passed on to.", "error")
        status = 400
    form.summary_version.data = case.summary_version
    flags = find_flags(case.summary)
    return render_template("console/pass_on.html", case=case, form=form, flags=flags,
                           marked=_marked(case.summary, flags), confirmed=set(request.form.getlist("confirm"))), status


def _marked(summary: str, flags: list) -> list[tuple[str, object]]:
    """The summary cut into (text, flag or None) pieces, so the page can mark each flag
    while Jinja still escapes every piece."""
    pieces: list[tuple[str, object]] = []
    position = 0
    for flag in flags:
        pieces.append((summary[position:flag.start], None))
        pieces.append((summary[flag.start:flag.end], flag))
        position = flag.end
    pieces.append((summary[position:], None))
    return [piece for piece in pieces if piece[0]]


@bp.get("/tips/<reference>/package")
@requires("handler")
def package(reference: str):  # type: ignore[no-untyped-def]
    try:
        disseminated = console().casework.package(reference)
    except CaseworkError as error:
        return _refused(reference, error)
    console().audit.append(current_user.name, "export", tip=reference, detail="printable")
    return render_template("console/package.html", package=disseminated)


@bp.get("/tips/<reference>/package.json")
@requires("handler")
def package_json(reference: str):  # type: ignore[no-untyped-def]
    try:
        disseminated = console().casework.package(reference)
    except CaseworkError as error:
        return jsonify(error=str(error)), 409
    console().audit.append(current_user.name, "export", tip=reference, detail="json")
    response = jsonify(disseminated.as_json())
    response.headers["Content-Disposition"] = f'attachment; filename="tip-{reference}.json"'
    return response


# -- listening -------------------------------------------------------------------------------------

@bp.get("/tips/<reference>/parts/<int:index>/audio")
@requires("handler")
def listen(reference: str, index: int):  # type: ignore[no-untyped-def]
    """The disguised copy of a recording that could not be transcribed, made now, never stored."""
    casework = console().casework
    casework.tip(reference)
    if casework.case(reference).finished in FINISHED:
        return Response("This tip is finished; its audio is no longer offered.\n", 410, mimetype="text/plain")
    try:
        with Provider(console().settings) as provider:
            audio = disguised_recording(casework.tips, provider, reference, index)
    except NothingToHear as nothing:
        return Response(f"{nothing}\n", 404, mimetype="text/plain")
    except ProviderError as error:
        return Response(f"The recording could not be fetched from the provider: {error}\n", 502,
                        mimetype="text/plain")
    console().audit.append(current_user.name, "listen", tip=reference, detail=f"part={index}")
    return Response(audio, mimetype="audio/wav", headers={"Content-Disposition": "inline"})


# -- supervisors: reassign ----------------------------------------------------------------------------

@bp.post("/tips/<reference>/reassign")
@requires("supervisor")
def reassign(reference: str):  # type: ignore[no-untyped-def]
    form = ReassignForm()
    target = console().accounts.get((form.handler.data or "").strip().lower()) if form.validate_on_submit() else None
    if target is None or not target.has_role("handler"):
        return _refused(reference, CaseworkError("Give the name of an active handler account."))
    try:
        console().casework.reassign(reference, target.name)
    except CaseworkError as error:
        return _refused(reference, error)
    flash(f"Tip {reference} now belongs to {target.name}.", "info")
    return _changed(reference, "reassign", detail=f"to={target.name}")
