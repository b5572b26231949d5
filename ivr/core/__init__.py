"""The core: Tipline's domain, shared by the three doors (webhooks, console, CLI and workers).

Nothing in `ivr/core/` imports Flask or a door (tests/test_layers.py). `build_core` is
called once per process (the app factory, the worker and clock, the CLI), so every
process agrees on keys and formats and reads the environment once: settings are reached
through `Core.settings`. The doors build their own objects from it (the voice blueprint
its Script and CallStateCodec, the SMS blueprint its SmsLine, the console its Casework).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.sentinel import Sentinel

from config.settings import Settings
from ivr.core.accounts import AccountStore
from ivr.core.audit import AuditLog
from ivr.core.durability import StorageGuard
from ivr.core.follow_up import FollowUp
from ivr.core.handler_queue import HandlerQueue
from ivr.core.jobs import JobArguments
from ivr.core.keys_in_use import check_master_keys
from ivr.core.period_keys import PeriodKeys
from ivr.core.pin_guard import PinGuard
from ivr.core.pin_pool import PinPool
from ivr.core.prompts import Menus, load_menus
from ivr.core.provider import Provider
from ivr.core.recordings import RecordingIntake
from ivr.core.replication import ReplicaBarrier
from ivr.core.sms_cleanup import MessageCleanup
from ivr.core.sms_sessions import IDLE_SECONDS, SessionStore
from ivr.core.support import Support, load_support
from ivr.core.tips import TipStore
from ivr.core.vault import KeyRing, SessionKeys, TipVault

# Short timeouts: a webhook must answer within Twilio's 15 s even when Redis is away.
REDIS_SOCKET_TIMEOUT = 2.0
REDIS_CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class SmsRecords:
    """The SMS line's state in Redis: the web line writes it, the worker and the clock end it."""

    sessions: SessionStore
    cleanup: MessageCleanup


@dataclass(frozen=True)
class Core:
    """The long-lived domain objects one process shares, built once by `build_core`."""

    settings: Settings
    redis: redis.Redis
    menus: Menus
    tips: TipStore
    recordings: RecordingIntake
    session_keys: SessionKeys
    sms: SmsRecords
    pin_guard: PinGuard
    follow_up: FollowUp  # questions to tipsters, their answers, the status they hear
    support: Support  # where victims and witnesses can get support, per language
    accounts: AccountStore
    audit: AuditLog
    arguments: JobArguments  # opens what a job carries (sealed by `recordings` and `sms.cleanup`)
    storage: StorageGuard  # may a webhook store into this Redis (persistence on, nothing evicted)?
    replicas: ReplicaBarrier  # wait until a replica holds what was just stored (REDIS_REPLICA_ACKS)
    pin_pool: PinPool  # PINs minted ahead with their argon2 hashes: no webhook waits for argon2

    def check_keys_in_use(self) -> None:
        """Refuse (MissingMasterKey, naming it) when a master key that period key files or tips
        from before period keys still use is missing from VAULT_KEYS. Needs Redis."""
        periods = self.tips.vault.periods
        if not isinstance(periods, PeriodKeys):
            raise TypeError("the core's vault has no period keys")
        check_master_keys(periods, self.tips.vault.key_ring, self.redis)

    def provider(self, timeout_seconds: float = 10.0) -> Provider:
        """A client for the provider's REST API (close it, or use it as a context manager);
        it deletes nothing before a replica holds what was committed (`replicas`)."""
        return Provider(self.settings, timeout_seconds=timeout_seconds, before_delete=self.replicas.confirm)


def connect_redis(settings: Settings) -> redis.Redis:
    """A lazy client: nothing connects until the first command, so start-up never needs Redis.

    `rediss://` speaks TLS; a password (`rediss://:PASSWORD@host:6380/0`, or a user with
    `rediss://USER:PASSWORD@...`) and the TLS options (`?ssl_ca_certs=/path/ca.pem`,
    `ssl_cert_reqs=required`) come from the URL, as redis-py reads them.

    With REDIS_SENTINELS the client asks the sentinels for the master at each (re)connect,
    so after a failover the next command reaches the new one (a connection to a master
    that became a replica is dropped on its first READONLY reply).
    """
    sentinel = settings.redis_sentinel
    if sentinel is not None:
        sentinels = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves Sentinel untyped
            list(sentinel.sentinels),
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            sentinel_kwargs={"password": sentinel.sentinel_password, "socket_timeout": REDIS_SOCKET_TIMEOUT,
                             "socket_connect_timeout": REDIS_CONNECT_TIMEOUT},
        )
        master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
            sentinel.master_name, redis_class=redis.Redis, password=sentinel.password, health_check_interval=30)
        return master
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        health_check_interval=30,
    )


def build_core(settings: Settings) -> Core:
    """Build the core without connecting: a process starts while Redis is away.

    Refuses (`MissingMasterKey`) when a period key file is sealed under a master key that
    VAULT_KEYS lacks (`ivr.core.keys_in_use`).
    """
    connection = connect_redis(settings)
    replicas = ReplicaBarrier(connection, settings.redis_replica_acks)
    menus = load_menus()
    ring = KeyRing(settings.vault_keys)
    periods = PeriodKeys(settings.period_keys_dir, ring, must_exist=settings.is_production)
    check_master_keys(periods, ring)
    tips = TipStore(connection, TipVault(ring, periods), HandlerQueue(connection))
    cleanup = MessageCleanup(settings.secret_keys, connection)
    follow_up = FollowUp(connection, tips, menus, settings.console_lease_seconds)
    return Core(
        settings=settings,
        redis=connection,
        menus=menus,
        tips=tips,
        recordings=RecordingIntake(settings.secret_keys, connection, menus, tips, follow_up,
                                   replicas),
        session_keys=SessionKeys(settings.secret_keys, grace_seconds=IDLE_SECONDS),
        sms=SmsRecords(sessions=SessionStore(connection, menus, tips, cleanup), cleanup=cleanup),
        pin_guard=PinGuard(settings.secret_keys, connection, tips),
        follow_up=follow_up,
        support=load_support(menus),
        accounts=AccountStore(connection, settings.secret_keys, settings.console_idle_seconds),
        audit=AuditLog(connection, settings.audit_keys),
        arguments=JobArguments(settings.secret_keys),
        storage=StorageGuard(connection, settings),
        replicas=replicas,
        pin_pool=PinPool(connection, settings.secret_keys),
    )
