"""GET /metrics: the Prometheus text format, for the operator's scraper and nobody else.

Without METRICS_TOKEN there are no metrics (404, as for any unknown path); with it, a
request must carry `Authorization: Bearer <token>` (401 otherwise). The webhooks of the
voice and SMS lines are counted and timed here, by endpoint name (`voice.language`), never
by path: a path can carry a query, and a query the call-state token.
"""

from __future__ import annotations

import functools
import hmac
import time

from flask import Blueprint, Flask, Response, abort, g, request
from prometheus_client import Counter, Histogram

from ivr.core import metrics as measured
from ivr.current import current_core

bp = Blueprint("metrics", __name__)
WEBHOOK_BLUEPRINTS = ("voice", "sms")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def install(app: Flask) -> None:
    """Register `/metrics` and time every webhook the voice and SMS lines answer."""
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_count_webhook)


@bp.get("/metrics")
def metrics() -> Response:
    token = current_core().settings.metrics_token
    if not token:
        abort(404)
    offered = request.headers.get("Authorization", "")
    scheme, _, credential = offered.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token.encode()):
        return Response("Unauthorized: send Authorization: Bearer and the METRICS_TOKEN.\n", status=401,
                        mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"})
    return Response(measured.exposition(current_core().redis), content_type=CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_webhook(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if request.blueprint in WEBHOOK_BLUEPRINTS and request.endpoint and started is not None:
        route = request.endpoint  # a name from our code, e.g. "voice.language"
        _requests(route, measured.webhook_outcome(response.status_code)).inc()
        _seconds(route).observe(time.perf_counter() - started)
    return response


# A labelled child per route (and outcome), looked up once: labels() validates and locks on
# every call. Routes and outcomes are names from our code, so these stay small.
@functools.cache
def _requests(route: str, outcome: str) -> Counter:
    return measured.WEBHOOK_REQUESTS.labels(route=route, outcome=outcome)


@functools.cache
def _seconds(route: str) -> Histogram:
    return measured.WEBHOOK_SECONDS.labels(route=route)
