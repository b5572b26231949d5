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

A second question, asked of every process through INFO alone (which managed Redis allows):
could Redis lose a tip at all? With no append-only file every write since the last RDB
snapshot dies with the process; with a `maxmemory-policy` other than `noeviction` a full
Redis drops keys (a tip, a queue entry, a lease) to make room. `StorageGuard` asks once
per process and then every `SAFETY_TTL_SECONDS`; while the answer is "unsafe", production's
webhooks that would store answer the polite failure instead (the provider keeps the
recording or text, and its sweep takes it in once Redis is fixed), and `/healthz` names the
setting. In development it only warns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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
    safety = storage_safety(connection)
    if safety.safe is False and settings.is_production:
        raise NotDurable(f"Redis at REDIS_URL could lose tips: {safety.detail} (docs/ARCHITECTURE.md, durability).")
    found = redis_durability(connection)
    if found.durable is False and settings.is_production:
        raise NotDurable(f"Redis at REDIS_URL is not durable: {found.detail} (docs/ARCHITECTURE.md, durability).")
    if found.durable is False:
        log.warning("Redis is not durable: %s", found.detail)
    elif found.durable is None:
        log.warning("cannot tell whether Redis is durable: %s", found.detail)
    return found


# -- could Redis lose a tip? (INFO only) ----------------------------------------------------

# How long a process trusts its last answer: webhooks must not run INFO on every request,
# and an operator's fix is noticed within this time.
SAFETY_TTL_SECONDS = 30.0
# A failed INFO (Redis away) is asked again sooner: the writes fail by themselves meanwhile.
UNKNOWN_TTL_SECONDS = 2.0
SAFE_POLICY = "noeviction"


@dataclass(frozen=True)
class StorageSafety:
    """Can Redis lose a stored tip? `safe` is None when Redis did not answer INFO;
    each problem names the setting to change."""

    safe: bool | None
    problems: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return "; ".join(self.problems) or ("persistence on, maxmemory-policy noeviction" if self.safe else
                                            "Redis did not answer INFO")


def _info_field(info: dict[str, object], name: str) -> str:
    return str(info.get(name, "")).strip().lower()


def storage_safety(connection: redis.Redis) -> StorageSafety:
    """Read `INFO persistence` and `INFO memory` (never CONFIG, which managed Redis refuses).

    "Persistence off" is no append-only file: RDB snapshots alone (whatever their save
    policy, which INFO does not show) lose every tip taken since the last one.
    """
    try:
        persistence, memory = connection.info("persistence"), connection.info("memory")
    except redis.RedisError:
        return StorageSafety(None)
    problems = []
    if _info_field(persistence, "aof_enabled") not in ("1", "true"):
        problems.append("persistence is off (no append-only file: a restart loses every tip since the last "
                        "snapshot); set appendonly yes")
    elif _info_field(persistence, "aof_last_write_status") not in ("", "ok"):
        problems.append("the append-only file's last write failed; check the disk Redis writes to")
    policy = _info_field(memory, "maxmemory_policy")
    if policy and policy != SAFE_POLICY:
        problems.append(f"maxmemory-policy is {policy} (a full Redis drops tips to make room); "
                        f"set maxmemory-policy {SAFE_POLICY}")
    return StorageSafety(not problems, tuple(problems))


class StorageGuard:
    """The process's answer to "may a webhook store into this Redis?", asked at most every
    `SAFETY_TTL_SECONDS` (the first time on the first webhook that would store)."""

    def __init__(self, connection: redis.Redis, settings: Settings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connection = connection
        self._production = settings.is_production
        self._clock = clock
        self._lock = threading.Lock()
        self._known: StorageSafety | None = None
        self._until = 0.0

    def safety(self) -> StorageSafety:
        """What Redis said lately; logs an error (production) or a warning naming the setting."""
        with self._lock:
            now = self._clock()
            if self._known is not None and now < self._until:
                return self._known
            found = storage_safety(self._connection)
            self._until = now + (UNKNOWN_TTL_SECONDS if found.safe is None else SAFETY_TTL_SECONDS)
            if found.safe is False and self._production:
                log.error("Redis could lose tips, so webhooks that store answer with the polite failure: %s",
                          found.detail)
            elif found.safe is False:
                log.warning("Redis could lose tips (production would refuse to store): %s", found.detail)
            self._known = found
            return found

    def refuses_writes(self) -> bool:
        """True in production while Redis could lose what a webhook would store."""
        return self._production and self.safety().safe is False
