"""Is a commit Redis has acknowledged on disk? Checked when a process that deletes at the
provider starts (promise 4: delete at the provider only after the tip is durable).

The worker deletes a recording (and the call log) at the provider right after its
transcript is committed. That order is only safe if the commit survives a crash: with the
append-only file fsynced every second (Redis's default `appendfsync everysec`), a power
cut or kernel crash can take the last second or two of commits with it, after the
recording was already deleted, and the tip is gone for good. With `appendfsync always`
Redis fsyncs before it answers, so an answered commit is on disk. What each setting means
for an operator's own REDIS_URL is in docs/ARCHITECTURE.md.

Managed Redis often refuses CONFIG: then we cannot tell, and say so, naming what to check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from config.settings import Settings

log = logging.getLogger(__name__)


class NotDurable(RuntimeError):
    """Redis is configured so that an acknowledged commit can be lost (production refuses it)."""


@dataclass(frozen=True)
class Durability:
    """What the server's configuration says: durable True/False, or None when it will not say."""

    durable: bool | None
    detail: str


def _config_value(connection: redis.Redis, name: str) -> str:
    value = connection.config_get(name).get(name, "")
    return (value.decode() if isinstance(value, bytes) else str(value)).strip().lower()


def redis_durability(connection: redis.Redis) -> Durability:
    """Read `appendonly` and `appendfsync`; a refused CONFIG GET is "cannot tell", not an error."""
    try:
        appendonly, appendfsync = _config_value(connection, "appendonly"), _config_value(connection, "appendfsync")
    except redis.ResponseError as error:  # unknown command (renamed away), NOPERM (ACL), managed services
        return Durability(None, f"the server refuses CONFIG GET ({str(error)[:80]}); make sure it runs with "
                                "appendonly yes and appendfsync always")
    if appendonly != "yes":
        return Durability(False, "appendonly is off: a restart loses every commit since the last snapshot; "
                                 "set appendonly yes and appendfsync always")
    if appendfsync != "always":
        return Durability(False, f"appendfsync is {appendfsync or 'unset'}: a crash can lose commits already "
                                 "answered, after the provider's copy was deleted; set appendfsync always")
    return Durability(True, "appendonly yes, appendfsync always")


def check_durability_at_start(connection: redis.Redis, settings: Settings) -> Durability:
    """Log what the server's configuration promises; refuse (NotDurable) in production when
    it can tell a commit may be lost. Call once Redis answers."""
    found = redis_durability(connection)
    if found.durable is False and settings.is_production:
        raise NotDurable(f"Redis at REDIS_URL is not durable: {found.detail} (docs/ARCHITECTURE.md, durability).")
    if found.durable is False:
        log.warning("Redis is not durable: %s", found.detail)
    elif found.durable is None:
        log.warning("cannot tell whether Redis is durable: %s", found.detail)
    return found
