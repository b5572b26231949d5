"""GET /healthz: is the web app up, can it reach Redis, and could that Redis lose tips?

The last is `StorageGuard`'s answer (INFO, asked at most every 30 s), the same one that
makes production's storing webhooks refuse: when Redis could lose tips, `status` is
"degraded" and `redis_settings` names what to change. Otherwise the answer is as it was.
"""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from ivr.current import current_core

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    core = current_core()
    try:
        redis_ok = bool(core.redis.ping())
    except redis.RedisError:
        redis_ok = False
    safety = core.storage.safety() if redis_ok else None
    if safety is not None and safety.safe is False:
        return jsonify(status="degraded", redis=redis_ok, redis_settings=list(safety.problems),
                       storing=not core.settings.is_production)
    return jsonify(status="ok", redis=redis_ok)
