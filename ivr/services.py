"""The long-lived objects one process shares: settings, Redis, menus, codecs.

Built once by `build_services` (the app factory and the worker both call it), so the
web app and the workers agree on keys and formats without reading the environment twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from config.settings import Settings
from ivr.call_state import CallStateCodec
from ivr.handler_queue import HandlerQueue
from ivr.prompts import Menus, load_menus
from ivr.recordings import RecordingIntake
from ivr.sms.line import SmsLine
from ivr.sms.sessions import IDLE_SECONDS
from ivr.tips import TipStore
from ivr.vault import KeyRing, SessionKeys, TipVault
from ivr.voice.script import Script

# Short timeouts: a webhook must answer within Twilio's 15 s even when Redis is away.
REDIS_SOCKET_TIMEOUT = 2.0
REDIS_CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: redis.Redis
    menus: Menus
    call_states: CallStateCodec
    tips: TipStore
    recordings: RecordingIntake
    script: Script
    session_keys: SessionKeys
    sms: SmsLine


def connect_redis(settings: Settings) -> redis.Redis:
    """A lazy client: nothing connects until the first command, so start-up never needs Redis."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        health_check_interval=30,
    )


def build_services(settings: Settings) -> Services:
    connection = connect_redis(settings)
    menus = load_menus()
    call_states = CallStateCodec(settings.secret_key)
    tips = TipStore(connection, TipVault(KeyRing(settings.vault_keys)), HandlerQueue(connection))
    return Services(
        settings=settings,
        redis=connection,
        menus=menus,
        call_states=call_states,
        tips=tips,
        recordings=RecordingIntake(settings.secret_key, connection, menus, tips),
        script=Script(menus, call_states, settings.public_base_url),
        session_keys=SessionKeys(settings.secret_key, grace_seconds=IDLE_SECONDS),
        sms=SmsLine(settings.secret_key, connection, menus, tips),
    )


def services() -> Services:
    """The current app's services (inside a request)."""
    return current_app.extensions["tipline"]
