"""GET /healthz: is the web app up, and can it reach Redis?"""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from ivr.current import current_core

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    try:
        redis_ok = bool(current_core().redis.ping())
    except redis.RedisError:
        redis_ok = False
    return jsonify(status="ok", redis=redis_ok)
