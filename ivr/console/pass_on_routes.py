"""Passing a tip on (the summary, checked for what could identify the tipster), and the
package that leaves."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ivr.console.blueprint import bp, console
from ivr.console.cases import CaseworkError, FlagsUnresolved, NewsArrived, things
from ivr.console.flags import Flag, find_flags
from ivr.console.forms import PassOnForm, choices
from ivr.console.roles import requires

# -- passing on ----------------------------------------------------------------------------------

@bp.route("/tips/<reference>/pass-on", methods=["GET", "POST"])
@requires("handler")
def pass_on(reference: str) -> ResponseReturnValue:
    """The summary with its flags marked, then the pass-on. The tip page's link carries how
    many parts it showed (?seen=), and the form carries that on: a tipster's news arriving
    meanwhile refuses the pass-on (NewsArrived: back to the tip, to read it)."""
    casework = console().casework
    tip = casework.tip(reference)
    form = PassOnForm()
    form.partner.choices = choices(console().catalogue.partners.items())
    case = casework.case(reference)
    status = 200
    refused_for_flags = False
    if form.validate_on_submit():
        confirmed = set(request.form.getlist("confirm"))
        try:
            casework.pass_on(reference, current_user.name, form.partner.data, confirmed, form.summary_version.data,
                             form.parts_seen.data)
        except FlagsUnresolved:
            refused_for_flags = True  # the page says so once, above the marked summary
            status = 400
        except NewsArrived:
            raise  # to the tip's page, where the news is (the blueprint's handler says why)
        except CaseworkError as error:
            flash(str(error), "error")
            status = 400
        else:
            console().audit.append(current_user.name, "pass_on", tip=reference, detail=f"partner={form.partner.data}")
            flash(f"Tip {reference} was passed on to {console().catalogue.partners[form.partner.data]}.", "info")
            return redirect(url_for("console.package", reference=reference))
    elif form.is_submitted():
        flash("This form is out of date: reload the tip and try again." if form.parts_seen.errors
              else "Choose who it is passed on to.", "error")
        status = 400
    else:
        seen = request.args.get("seen", "")
        form.parts_seen.data = int(seen) if seen.isascii() and seen.isdigit() and len(seen) < 6 else len(tip.parts)
    form.summary_version.data = case.summary_version
    flags = find_flags(case.summary)
    doubtful_parts = [part.index for part in tip.parts if part.transcript and part.doubtful]
    return render_template("console/pass_on.html", case=case, form=form, flags=flags, things=things,
                           refused_for_flags=refused_for_flags, marked=_marked(case.summary, flags),
                           confirmed=set(request.form.getlist("confirm")),
                           doubtful_parts=doubtful_parts), status


def _marked(summary: str, flags: list[Flag]) -> list[tuple[str, Flag | None]]:
    """The summary cut into (text, flag or None) pieces, so the page can mark each flag
    while Jinja still escapes every piece."""
    pieces: list[tuple[str, Flag | None]] = []
    position = 0
    for flag in flags:
        pieces.append((summary[position:flag.start], None))
        pieces.append((summary[flag.start:flag.end], flag))
        position = flag.end
    pieces.append((summary[position:], None))
    return [piece for piece in pieces if piece[0]]


@bp.get("/tips/<reference>/package")
@requires("handler")
def package(reference: str) -> ResponseReturnValue:
    disseminated = console().casework.package(reference)  # NotReady: the blueprint's handler says why
    console().audit.append(current_user.name, "export", tip=reference, detail="printable")
    return render_template("console/package.html", package=disseminated)


@bp.get("/tips/<reference>/package.json")
@requires("handler")
def package_json(reference: str) -> ResponseReturnValue:
    try:
        disseminated = console().casework.package(reference)
    except CaseworkError as error:
        return jsonify(error=str(error)), 409
    console().audit.append(current_user.name, "export", tip=reference, detail="json")
    response = jsonify(disseminated.as_json())
    response.headers["Content-Disposition"] = f'attachment; filename="tip-{reference}.json"'
    return response
