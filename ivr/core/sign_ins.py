"""Signed-in browsers: a random login id in Redis per sign-in, ended by the server.

The console's cookie only carries the login id. The id expires after the idle timeout
and each request renews it, so signing out, going idle or having the account disabled
ends the sign-in on the server, whatever the cookie says.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

from ivr.core import keys
from ivr.core.redis_values import as_text

if TYPE_CHECKING:
    from ivr.core.accounts import Account

LOGINS_OF_SECONDS = 24 * 3600  # the per-account set of login ids outlives any one of them


class SignIns:
    def __init__(self, connection: redis.Redis, idle_seconds: int,
                 account_named: Callable[[str], Account | None]) -> None:
        self._redis = connection
        self.idle_seconds = idle_seconds
        self._account_named = account_named

    def start(self, account: Account) -> str:
        login_id = secrets.token_urlsafe(32)
        with self._redis.pipeline() as pipe:
            pipe.set(keys.console_login(login_id), account.name, ex=self.idle_seconds)
            pipe.sadd(keys.console_logins_of(account.name), login_id)
            pipe.expire(keys.console_logins_of(account.name), LOGINS_OF_SECONDS)
            pipe.execute()
        return login_id

    def resume(self, login_id: str) -> Account | None:
        """The account behind a browser's login id, renewing its idle timeout; None when over."""
        if not login_id or len(login_id) > 64:
            return None
        with self._redis.pipeline() as pipe:
            pipe.get(keys.console_login(login_id))
            pipe.expire(keys.console_login(login_id), self.idle_seconds)
            name, _ = pipe.execute()
        account = self._account_named(name.decode()) if name else None
        if account is None or not account.has_role("handler"):  # every role, if the account is active
            self._redis.delete(keys.console_login(login_id))
            return None
        return account

    def end(self, login_id: str) -> None:
        name = self._redis.getdel(keys.console_login(login_id)) if login_id else None
        if name:
            self._redis.srem(keys.console_logins_of(as_text(name)), login_id)

    def end_all(self, name: str) -> None:
        login_ids = [as_text(i) for i in self._redis.smembers(keys.console_logins_of(name))]
        self._redis.delete(*[keys.console_login(i) for i in login_ids], keys.console_logins_of(name))
