"""Console accounts: who may sign in, with which role, and the proof they must give.

An account is made (by an admin, or `tipline handler add`) without a password: the
person gets a one-time enrolment link, sets a password there and scans a TOTP secret,
so no password is ever printed, mailed or typed on a command line. Sign-in needs the
password (argon2) and a fresh TOTP code (pyotp; a code is accepted once, `one_time_codes.py`).
Each attempt is counted, per name (known or not) and per client address, before it is
checked, and only attempts under both limits are checked (`sign_in_limits.py`); the
answer is the same whether the name exists, the password was wrong or the code was, so
the sign-in page cannot be used to learn who works here.

What a signed-in browser holds is in `sign_ins.py`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

import pyotp
import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ivr.core import keys
from ivr.core.one_time_codes import StepClaims, matching_step
from ivr.core.redis_values import as_bytes, as_text
from ivr.core.sign_in_limits import ADDRESS_FAILURES_ALLOWED, WINDOW_SECONDS, Attempt, SignInLimits
from ivr.core.sign_ins import SignIns
from ivr.core.transactions import atomically
from ivr.core.vault import CannotOpen, Sealer, Secrets, key_list

ROLES = ("handler", "supervisor", "admin")  # each can do all that the ones before it can
PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"
NAME_SHAPE = re.compile(r"[a-z][a-z0-9._-]{1,31}")
MIN_PASSWORD_CHARACTERS = 12
MAX_PASSWORD_CHARACTERS = 256
ENROLMENT_SECONDS = 72 * 3600
TOTP_ISSUER = "Tipline console"

PASSWORD_HASHER = PasswordHasher()
# Verified when the name is unknown, so an unknown name costs the time a wrong password does.
_DUMMY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


class AccountError(Exception):
    """Something about an account request is wrong; the message is fit to show."""


class BadName(AccountError):
    pass


class NameTaken(AccountError):
    pass


class UnknownAccount(AccountError):
    pass


class WeakPassword(AccountError):
    pass


class EnrolmentInvalid(AccountError):
    """The link is forged, expired, used already, or its account was disabled."""


class SignInRefused(AccountError):
    """One answer for every failed check (unknown name, wrong password, wrong or spent code).

    `attempt` is the counted attempt, so the page can record a lock it started."""

    def __init__(self, message: str, attempt: Attempt) -> None:
        super().__init__(message)
        self.attempt = attempt


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    status: str

    def has_role(self, role: str) -> bool:
        """True when this account's role is `role` or one above it."""
        return self.status == ACTIVE and ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: whose account, and the TOTP secret to scan."""

    name: str
    role: str
    totp_secret: str

    @property
    def provisioning_uri(self) -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.name, issuer_name=TOTP_ISSUER)


class AccountStore:
    def __init__(self, connection: redis.Redis, secret_keys: Secrets, idle_seconds: int) -> None:
        self._redis = connection
        self._links = URLSafeTimedSerializer(
            # itsdangerous signs with the *last* key listed and checks every one: oldest first.
            list(reversed(key_list(secret_keys))), salt="tipline.console.enrolment")
        self._totp = Sealer(secret_keys, "console-totp")
        self.sign_ins = SignIns(connection, idle_seconds, self.get)
        self.limits = SignInLimits(connection, secret_keys)
        self._steps = StepClaims(connection)

    # -- accounts --------------------------------------------------------------------------

    def create(self, name: str, role: str) -> str:
        """Make a pending account; returns its enrolment token (for the link)."""
        name = check_name(name)
        if role not in ROLES:
            raise AccountError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
        nonce = secrets.token_urlsafe(16)

        def create(pipe: redis.client.Pipeline) -> None:
            if pipe.exists(keys.console_account(name)):
                raise NameTaken(f"There is already an account named {name!r}.")
            pipe.multi()
            pipe.hset(keys.console_account(name), mapping={"role": role, "status": PENDING, "enrol_nonce": nonce})
            pipe.sadd(keys.CONSOLE_ACCOUNTS, name)

        atomically(self._redis, [keys.console_account(name)], create)
        return self._links.dumps({"name": name, "nonce": nonce})

    def new_enrolment_link(self, name: str) -> str:
        """A fresh enrolment token for an existing account (a lost phone, a forgotten
        password): the old password and TOTP secret stop working at once."""
        account = self.get(name)
        if account is None:
            raise UnknownAccount(f"There is no account named {name!r}.")
        nonce = secrets.token_urlsafe(16)
        self._redis.hset(keys.console_account(name), mapping={"status": PENDING, "enrol_nonce": nonce})
        self._redis.hdel(keys.console_account(name), "password_hash", "totp", "pending_totp", "last_totp_step")
        self.sign_ins.end_all(name)
        return self._links.dumps({"name": name, "nonce": nonce})

    def existing(self, name: str) -> Account:
        """The account named `name`, which must exist (accounts are never deleted)."""
        account = self.get(name)
        if account is None:
            raise UnknownAccount(f"There is no account named {name!r}.")
        return account

    def get(self, name: str) -> Account | None:
        if not NAME_SHAPE.fullmatch(name or ""):
            return None
        role, status = self._redis.hmget(keys.console_account(name), "role", "status")
        if role is None or status is None:
            return None
        return Account(name=name, role=as_text(role), status=as_text(status))

    def all(self) -> list[Account]:
        names = sorted(as_text(n) for n in self._redis.smembers(keys.CONSOLE_ACCOUNTS))
        return [account for account in map(self.get, names) if account is not None]

    def set_role(self, name: str, role: str) -> Account:
        if role not in ROLES:
            raise AccountError(f"The role must be one of {', '.join(ROLES)}.")
        self._keep_an_admin(name, "change the role of")
        self._redis.hset(keys.console_account(name), "role", role)
        return self.existing(name)

    def disable(self, name: str) -> None:
        self._keep_an_admin(name, "disable")
        self._redis.hset(keys.console_account(name), "status", DISABLED)
        self._redis.hdel(keys.console_account(name), "enrol_nonce")
        self.sign_ins.end_all(name)

    def _keep_an_admin(self, name: str, doing: str) -> None:
        """Refuse a change that would leave no active admin: nobody could manage accounts
        from the console any more (the CLI could, but not at 3 a.m. from a browser)."""
        account = self.get(name)
        if account is None:
            raise UnknownAccount(f"There is no account named {name!r}.")
        admins = [a for a in self.all() if a.role == "admin" and a.status == ACTIVE]
        if account.role == "admin" and account.status == ACTIVE and len(admins) == 1:
            raise AccountError(f"{name} is the only active admin: make another admin before you {doing} them.")

    # -- enrolment -------------------------------------------------------------------------

    def enrolment(self, token: str) -> Enrolment:
        """Open an enrolment link; the TOTP secret is made on first opening and kept sealed."""
        name = self._name_in_link(token)
        record = self._record(name)
        sealed = record.get("pending_totp")
        if sealed is None:
            secret = pyotp.random_base32()
            self._redis.hset(keys.console_account(name), "pending_totp", self._totp.seal(secret.encode()))
        else:
            secret = self._totp.open(sealed).decode()
        return Enrolment(name=name, role=record["role"].decode(), totp_secret=secret)

    def enrol(self, token: str, password: str, code: str, now: float | None = None) -> Account:
        """Finish enrolment: set the password and the TOTP secret, spend the link."""
        enrolment = self.enrolment(token)
        check_password(password, enrolment.name)
        step = matching_step(enrolment.totp_secret, code, now, after=-1)
        if step is None:
            raise AccountError("That code is not right. Check the time on your phone, then enter the current code.")
        key = keys.console_account(enrolment.name)
        def enrol(pipe: redis.client.Pipeline) -> None:
            if pipe.hget(key, "enrol_nonce") != self._nonce_in_link(token).encode():
                raise EnrolmentInvalid("This enrolment link has been used or replaced. Ask an admin for a new one.")
            pipe.multi()
            pipe.hset(key, mapping={"password_hash": PASSWORD_HASHER.hash(password),
                                    "totp": self._totp.seal(enrolment.totp_secret.encode()),
                                    "last_totp_step": step, "status": ACTIVE})
            pipe.hdel(key, "enrol_nonce", "pending_totp")

        atomically(self._redis, [key], enrol)
        return self.existing(enrolment.name)

    def _name_in_link(self, token: str) -> str:
        payload = self._payload(token)
        record = self._record(payload["name"])
        nonce = record.get("enrol_nonce")
        if nonce is None or not hmac.compare_digest(nonce, payload["nonce"].encode()):
            raise EnrolmentInvalid("This enrolment link has been used or replaced. Ask an admin for a new one.")
        return payload["name"]

    def _nonce_in_link(self, token: str) -> str:
        return self._payload(token)["nonce"]

    def _payload(self, token: str) -> dict[str, str]:
        try:
            payload = self._links.loads(token, max_age=ENROLMENT_SECONDS)
        except BadSignature:
            raise EnrolmentInvalid(
                "This enrolment link is not valid or has expired. Ask an admin for a new one.") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) \
                or not isinstance(payload.get("nonce"), str):
            raise EnrolmentInvalid("This enrolment link is not valid. Ask an admin for a new one.")
        return payload

    def _record(self, name: str) -> dict[str, bytes]:
        record = {as_text(k): as_bytes(v) for k, v in self._redis.hgetall(keys.console_account(name)).items()}
        if not record:
            raise EnrolmentInvalid("This enrolment link is for an account that no longer exists.")
        return record

    # -- signing in ------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, code: str, address: str, now: float | None = None) -> Account:
        """The account, when the password and a fresh TOTP code are right and neither the name
        nor the client `address` is locked.

        Raises SignInLocked (nothing was checked) or SignInRefused (checked and wrong). The
        attempt is counted before the slow check, and the code's step claimed atomically,
        so neither limit nor a code's single use gives way to a burst of concurrent tries.
        """
        name = (name or "").strip().lower()
        well_formed = bool(NAME_SHAPE.fullmatch(name))
        attempt = self.limits.count(name if well_formed else "_malformed", address)
        record = {as_text(k): as_bytes(v) for k, v in self._redis.hgetall(keys.console_account(name)).items()} \
            if well_formed else {}
        password_ok = _verify_password(as_text(record.get("password_hash", b"")) or _DUMMY_HASH, password)
        step = None
        if password_ok and record.get("status") == ACTIVE.encode() and record.get("totp"):
            secret = self._open_totp(record["totp"])
            step = matching_step(secret, code, now, after=int(record.get("last_totp_step", b"-1")))
        if step is None or not self._steps.claim(name, step):  # a code is good once
            raise SignInRefused(refusal(), attempt)
        self.limits.succeeded(attempt)
        return Account(name=name, role=as_text(record["role"]), status=ACTIVE)

    def reseal_totp(self) -> int:
        """Re-seal every account's TOTP secret (and one waiting in an enrolment) under the
        current SECRET_KEY, so that dropping the old key later makes nobody enrol again.
        Idempotent; returns how many secrets it re-sealed. A secret that opens under no key
        listed is left alone (that account enrols again, as it would have anyway)."""
        resealed = 0
        for account in self.all():
            key = keys.console_account(account.name)

            def reseal(pipe: redis.client.Pipeline, key: str = key) -> int:
                moved: dict[str, bytes] = {}
                for name in ("totp", "pending_totp"):
                    sealed = pipe.hget(key, name)
                    try:
                        fresh = self._totp.rotate(as_bytes(sealed)) if sealed else None
                    except CannotOpen:
                        fresh = None
                    if fresh is not None:
                        moved[name] = fresh
                pipe.multi()
                for name, fresh_seal in moved.items():
                    pipe.hset(key, name, fresh_seal)
                return len(moved)

            resealed += atomically(self._redis, [key], reseal)
        return resealed

    def _open_totp(self, sealed: bytes) -> str | None:
        try:
            return self._totp.open(sealed).decode()
        except CannotOpen:  # sealed under a key SECRET_KEY no longer lists: the account must enrol again
            return None


def refusal() -> str:
    return ("Sign-in failed. Check your name, password and the current code from your app, then try again. "
            f"After {ADDRESS_FAILURES_ALLOWED} failures, sign-in from your address pauses for "
            f"{WINDOW_SECONDS // 60} minutes.")


def check_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not NAME_SHAPE.fullmatch(name):
        raise BadName("A name is 2-32 characters: lower-case letters, digits, '.', '_' or '-', "
                      "starting with a letter (e.g. 'sam.k'). Use a work name, not a full name.")
    return name


def check_password(password: str, name: str) -> None:
    if not MIN_PASSWORD_CHARACTERS <= len(password or "") <= MAX_PASSWORD_CHARACTERS:
        raise WeakPassword(f"Choose a password of at least {MIN_PASSWORD_CHARACTERS} characters "
                           "(a few unrelated words work well).")
    if name in password.lower() or len(set(password)) < 5:
        raise WeakPassword("That password is too easy to guess: do not use your name or repeated characters.")


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False
