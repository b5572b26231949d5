"""A supervisor's pages: the audit trail, the hotspots, the deadlines, the line's health, and reassigning a tip."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import Markup

from ivr.console.blueprint import bp, console
from ivr.console.cases import CaseworkError
from ivr.console.deadlines import AGE_BANDS
from ivr.console.deadlines import render_svg as render_deadlines_svg
from ivr.console.forms import ReassignForm
from ivr.console.hotspots import HotspotTable, build_table, iso_week, render_svg, weeks_between
from ivr.console.roles import requires
from ivr.core.health_report import line_health
from ivr.current import current_core

AUDIT_PAGE_SIZE = 100
DEFAULT_WEEKS = 8
MAX_WEEKS = 104
# A period is asked for by date; one outside these years is not a period anyone means (and
# before 1000 an ISO week's year is not four digits, near 9999 a week runs past date.max).
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9998, 12, 31)


@bp.get("/audit")
@requires("supervisor")
def audit() -> ResponseReturnValue:
    log = console().audit
    page = max(0, _int(request.args.get("page"), 0))
    tip = "".join(ch for ch in request.args.get("tip", "") if ch.isdigit()) or None
    who = request.args.get("who", "").strip().lower()[:32] or None
    entries = log.entries(start=page * AUDIT_PAGE_SIZE, count=AUDIT_PAGE_SIZE, newest_first=True, tip=tip, who=who)
    report = log.verify()
    log.append(current_user.name, "view_audit", detail=f"page={page}")
    return render_template("console/audit.html", entries=entries, report=report, page=page, tip=tip or "",
                           who=who or "", more=len(entries) == AUDIT_PAGE_SIZE)


def _period() -> tuple[date, date]:
    """The weeks asked for (?first=YYYY-MM-DD&last=YYYY-MM-DD), default the last eight."""
    today = date.today()
    try:
        last = date.fromisoformat(request.args["last"]) if request.args.get("last") else today
        first = date.fromisoformat(request.args["first"]) if request.args.get("first") else \
            last - timedelta(weeks=DEFAULT_WEEKS - 1)
        if not (EARLIEST_DAY <= first <= LATEST_DAY and EARLIEST_DAY <= last <= LATEST_DAY):
            raise ValueError("a period outside the years the hotspots can hold")
    except (ValueError, OverflowError):
        first, last = today - timedelta(weeks=DEFAULT_WEEKS - 1), today
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(weeks=MAX_WEEKS))
    return first, last


def _hotspot_table() -> tuple[date, date, HotspotTable]:
    first, last = _period()
    weeks = weeks_between(first, last)
    catalogue = console().catalogue
    counts = console().hotspots.counts(weeks)
    table = build_table(counts, weeks, list(catalogue.areas), list(catalogue.categories))
    return first, last, table


@bp.get("/hotspots")
@requires("supervisor")
def hotspots() -> ResponseReturnValue:
    first, last, table = _hotspot_table()
    catalogue = console().catalogue
    svg = render_svg(table, dict(catalogue.areas), dict(catalogue.categories))
    console().audit.append(current_user.name, "view_hotspots", detail=f"{iso_week(first)}..{iso_week(last)}")
    chart = Markup(svg)  # nosec B704  # render_svg escapes every label, holds no script (test_console_hotspots)
    return render_template("console/hotspots.html", table=table, chart=chart, first=first.isoformat(),
                           last=last.isoformat(), catalogue=catalogue)


@bp.get("/hotspots.svg")
@requires("supervisor")
def hotspots_svg() -> ResponseReturnValue:
    _, _, table = _hotspot_table()
    catalogue = console().catalogue
    return Response(render_svg(table, dict(catalogue.areas), dict(catalogue.categories)), mimetype="image/svg+xml")


@bp.get("/deadlines")
@requires("supervisor")
def deadlines() -> ResponseReturnValue:
    """What is owed to tipsters, oldest first: unclaimed tips, unanswered questions, stale statuses."""
    report = console().deadlines.report()
    console().audit.append(current_user.name, "view_deadlines",
                           detail=" ".join(f"{deadline.key}={deadline.count}" for deadline in report.lists))
    svg = render_deadlines_svg(report)
    chart = Markup(svg)  # nosec B704  # static labels, escaped, and numbers; no script (test_follow_up_console)
    return render_template("console/deadlines.html", report=report, chart=chart, bands=[b for _, b in AGE_BANDS])


@bp.get("/health")
@requires("supervisor")
def health() -> ResponseReturnValue:
    """The same checks as `tipline health`: Redis, workers, clock, queues, jobs, provider."""
    report = line_health(current_core())
    console().audit.append(current_user.name, "view_health", detail=f"status={report.status}")
    return render_template("console/health.html", report=report)


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


# -- a handler's tip, given to another handler ----------------------------------------------------

@bp.post("/tips/<reference>/reassign")
@requires("supervisor")
def reassign(reference: str) -> ResponseReturnValue:
    form = ReassignForm()
    target = console().accounts.get((form.handler.data or "").strip().lower()) if form.validate_on_submit() else None
    if target is None or not target.has_role("handler"):
        raise CaseworkError("Give the name of an active handler account.")
    console().casework.reassign(reference, target.name)
    flash(f"Tip {reference} now belongs to {target.name}.", "info")
    console().audit.append(current_user.name, "reassign", tip=reference, detail=f"to={target.name}")
    return redirect(url_for("console.tip", reference=reference))
