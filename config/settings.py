"""Settings: read from the environment once, typed, in one place.

Every other module takes a `Settings` object; nothing else reads `os.environ`.

In development, the secrets nobody has set (the app's secret key, the vault's master
key, the audit trail's key, and Twilio credentials for the local stand-in) are
generated once into `var/dev-secrets.json` (mode 0600, git-ignored), so `make run`
works on a fresh machine. With `TIPLINE_ENV=production` nothing is generated: a
missing secret is an error that names the variable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TWILIO_API_DEFAULT = "https://api.twilio.com"
ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    environment: str
    host: str
    port: int
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    twilio_api_base: str
    twilio_credentials_generated: bool
    redis_url: str
    # SECRET_KEY and AUDIT_KEY are lists (`new,old`): the first seals, signs and digests;
    # the others only open and verify, for the grace period a rotation needs
    # (ivr/core/secret_rotation.py, ivr/core/audit.py). `secret_key`/`audit_key` are the first.
    secret_keys: tuple[str, ...] = field(repr=False)
    vault_keys: str = field(repr=False)
    audit_keys: tuple[str, ...] = field(repr=False)
    var_dir: Path
    log_level: str
    stt_model_dir: Path | None
    stt_languages: frozenset[str]
    console_lease_seconds: int
    console_idle_seconds: int
    console_trusted_proxies: int
    feedback_deadline_days: int
    clock_lease_seconds: int
    worker_pulse_seconds: int
    # Where the period keys live (ivr/core/period_keys.py): outside Redis, outside its
    # backups, on storage every web and worker machine mounts. README, "Keys".
    period_keys_dir: Path
    retention: RetentionSettings = field(default_factory=lambda: RetentionSettings())
    # METRICS_TOKEN: the bearer token `/metrics` asks for; unset, there are no metrics (404).
    metrics_token: str | None = field(default=None, repr=False)
    # Where Twilio fetches TwiML (by POST) when our voice webhook fails: a TwiML Bin serving
    # `tipline provider fallback-twiml`. Empty: none (`tipline provider setup`).
    voice_fallback_url: str = ""
    # Redis behind Sentinel (REDIS_SENTINELS): found through the sentinels, not REDIS_URL.
    redis_sentinel: SentinelSettings | None = None
    # How many replicas must hold a commit before a webhook answers success or anything is
    # deleted at the provider (Redis's WAIT; ivr/core/replication.py). 1 with Sentinel, else 0.
    redis_replica_acks: int = 0
    # The most recordings, in percent of those transcribed over the last 7 days, kept at the
    # provider because their transcript is doubtful (ivr/core/doubtful_audio.py); 0: none.
    doubtful_audio_max_percent: int = 20

    @property
    def secret_key(self) -> str:
        return self.secret_keys[0]

    @property
    def audit_key(self) -> str:
        return self.audit_keys[0]

    @property
    def metrics_dir(self) -> Path:
        """Where this machine's processes write counters for `/metrics` (prometheus-client's multiprocess mode)."""
        return self.var_dir / "metrics"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = dict(os.environ if environ is None else environ)
        environment = env.get("TIPLINE_ENV", "development").strip().lower()
        if environment not in ENVIRONMENTS:
            raise SettingsError(f"TIPLINE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}.")
        var_dir = Path(env.get("TIPLINE_VAR_DIR") or PROJECT_ROOT / "var").resolve()
        if environment == "development":
            # A second terminal next to `make run`: what it runs with, where this environment is silent.
            running = running_with(var_dir)
            if env.get("PORT") or env.get("PUBLIC_BASE_URL"):  # an address of its own: none of the recorded one
                running = {name: value for name, value in running.items() if name == "TWILIO_API_BASE"}
            env = {**running, **{name: value for name, value in env.items() if value}}
        port = _port(env.get("PORT", "5000"))
        host = env.get("HOST", "127.0.0.1").strip() or "127.0.0.1"
        public_base_url = _base_url("PUBLIC_BASE_URL", env.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}")
        twilio_api_base = _base_url("TWILIO_API_BASE", env.get("TWILIO_API_BASE") or TWILIO_API_DEFAULT)

        sid, token = env.get("TWILIO_ACCOUNT_SID", "").strip(), env.get("TWILIO_AUTH_TOKEN", "").strip()
        if bool(sid) != bool(token):
            raise SettingsError("Set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither (development only).")
        generated_credentials = not sid
        secret_key = env.get("SECRET_KEY", "").strip()
        vault_keys = env.get("VAULT_KEYS", "").strip()
        audit_key = env.get("AUDIT_KEY", "").strip()
        if environment == "production":
            for name, value in (("TWILIO_ACCOUNT_SID", sid), ("SECRET_KEY", secret_key), ("VAULT_KEYS", vault_keys),
                                ("AUDIT_KEY", audit_key),
                                ("REDIS_URL", env.get("REDIS_URL") or env.get("REDIS_SENTINELS"))):
                if not value:
                    raise SettingsError(f"{name} is not set; it is required when TIPLINE_ENV=production.")
        if not (sid and secret_key and vault_keys and audit_key):
            dev = _dev_secrets(var_dir)
            sid, token = sid or dev["TWILIO_ACCOUNT_SID"], token or dev["TWILIO_AUTH_TOKEN"]
            secret_key = secret_key or dev["SECRET_KEY"]
            vault_keys = vault_keys or dev["VAULT_KEYS"]
            audit_key = audit_key or dev["AUDIT_KEY"]
        if not sid.startswith("AC") or len(sid) != 34:
            raise SettingsError("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits.")
        secret_keys = _key_list("SECRET_KEY", secret_key)
        audit_keys = _key_list("AUDIT_KEY", audit_key)

        stt_model_dir = env.get("STT_MODEL_DIR", "").strip()
        stt_languages = frozenset(x.strip().lower() for x in env.get("STT_LANGUAGES", "en").split(",") if x.strip())
        if not stt_languages:
            raise SettingsError("STT_LANGUAGES must name at least one language the model transcribes, e.g. 'en'.")

        period_keys_dir = _period_keys_dir(env, environment, var_dir)

        redis_url = env.get("REDIS_URL", "").strip() or f"unix://{var_dir / 'redis' / 'redis.sock'}"
        if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://.")
        sentinel = SentinelSettings.from_env(env)
        replica_acks = _bounded_int("REDIS_REPLICA_ACKS", env.get("REDIS_REPLICA_ACKS", "1" if sentinel else "0"),
                                    0, 5)
        return cls(
            environment=environment,
            host=host,
            port=port,
            public_base_url=public_base_url,
            twilio_account_sid=sid,
            twilio_auth_token=token,
            twilio_api_base=twilio_api_base,
            twilio_credentials_generated=generated_credentials,
            redis_url=redis_url,
            secret_keys=secret_keys,
            vault_keys=vault_keys,
            audit_keys=audit_keys,
            var_dir=var_dir,
            log_level=env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
            stt_model_dir=Path(stt_model_dir).resolve() if stt_model_dir else None,
            stt_languages=stt_languages,
            # A claimed tip left untouched this long goes back to the queue for someone else.
            console_lease_seconds=_bounded_int("CONSOLE_LEASE_SECONDS", env.get("CONSOLE_LEASE_SECONDS", "900"),
                                               1, 24 * 3600),
            # A console sign-in idle this long is over (the cookie and the server-side login).
            console_idle_seconds=60 * _bounded_int("CONSOLE_IDLE_MINUTES", env.get("CONSOLE_IDLE_MINUTES", "15"),
                                                   1, 12 * 60),
            # Proxies in front of the app (nginx: 1) whose X-Forwarded-For the console trusts
            # for the client address it counts sign-in attempts by (ivr/console/client_address.py).
            console_trusted_proxies=_bounded_int("CONSOLE_TRUSTED_PROXIES",
                                                 env.get("CONSOLE_TRUSTED_PROXIES", "0"), 0, 5),
            # A tip whose tipster has heard the same status ("received", "being looked at") this
            # long is overdue on the supervisors' deadlines page: feedback within three months
            # is the norm for reporting channels.
            feedback_deadline_days=_bounded_int("FEEDBACK_DEADLINE_DAYS", env.get("FEEDBACK_DEADLINE_DAYS", "90"),
                                                1, 365),
            # The clock leader's lease (workers/clock_lease.py): a standby clock takes over
            # this long after the leader's machine dies.
            clock_lease_seconds=_bounded_int("CLOCK_LEASE_SECONDS", env.get("CLOCK_LEASE_SECONDS", "30"), 2, 600),
            # A worker silent this long is dead, whichever machine it ran on: the clock hands
            # its job back and the health report stops counting it (ivr/core/worker_pulse.py).
            worker_pulse_seconds=_bounded_int("WORKER_PULSE_SECONDS", env.get("WORKER_PULSE_SECONDS", "30"), 3, 600),
            retention=RetentionSettings.from_env(env),
            period_keys_dir=period_keys_dir,
            metrics_token=_metrics_token(env.get("METRICS_TOKEN", "")),
            voice_fallback_url=_https_url("VOICE_FALLBACK_URL", env.get("VOICE_FALLBACK_URL", "")),
            redis_sentinel=sentinel,
            redis_replica_acks=replica_acks,
            doubtful_audio_max_percent=_bounded_int("DOUBTFUL_AUDIO_MAX_PERCENT",
                                                    env.get("DOUBTFUL_AUDIO_MAX_PERCENT", "20"), 0, 100),
        )


@dataclass(frozen=True)
class SentinelSettings:
    """Redis high availability (README "Redis high availability"): the sentinels that know
    which server is the master now, and the name they monitor it under.

    REDIS_SENTINELS lists them (`host:port,host:port,host:port`); REDIS_SENTINEL_MASTER is
    the name in their `sentinel monitor` line (default `tipline`); REDIS_PASSWORD the
    master's and replicas' password (REDIS_URL is not read: its host would be the wrong
    one after a failover), REDIS_SENTINEL_PASSWORD the sentinels' own, if they have one.
    """

    sentinels: tuple[tuple[str, int], ...]
    master_name: str = "tipline"
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SentinelSettings | None:
        raw = env.get("REDIS_SENTINELS", "").strip()
        if not raw:
            return None
        sentinels = []
        for entry in raw.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingsError(f"REDIS_SENTINELS must list host:port pairs, comma-separated (for example "
                                    f"10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379), not {entry.strip()!r}.")
            sentinels.append((host, int(port)))
        master_name = env.get("REDIS_SENTINEL_MASTER", "tipline").strip() or "tipline"
        if not master_name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise SettingsError(f"REDIS_SENTINEL_MASTER must be the name the sentinels monitor (letters, digits, "
                                f"-, _ and .), not {master_name!r}.")
        return cls(sentinels=tuple(sentinels), master_name=master_name,
                   password=env.get("REDIS_PASSWORD", "").strip() or None,
                   sentinel_password=env.get("REDIS_SENTINEL_PASSWORD", "").strip() or None)


@dataclass(frozen=True)
class RetentionSettings:
    """How long tips and what is left of them are kept (`ivr.core.retention`; README "How long we keep things")."""

    # A tip passed on or closed this long ago is crypto-shredded and removed.
    days: int = 365
    # What is left of it (the reference, the PIN's hash, the month, a coarse outcome) goes this long after.
    tombstone_days: int = 730
    # A tip its tipster added to this recently is kept, however long ago it was finished.
    grace_days: int = 90

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetentionSettings:
        days = _bounded_int("RETENTION_DAYS", env.get("RETENTION_DAYS", "365"), 30, 3650)
        return cls(days=days,
                   tombstone_days=_bounded_int("TOMBSTONE_DAYS", env.get("TOMBSTONE_DAYS", "730"), 1, 3650),
                   grace_days=_bounded_int("RETENTION_GRACE_DAYS", env.get("RETENTION_GRACE_DAYS", "90"), 0, days))


RUN_FILE = "run.json"
# What `make run` records in var/run.json for the commands typed in another terminal.
RUN_VARIABLES = ("PORT", "PUBLIC_BASE_URL", "TWILIO_API_BASE")


def running_with(var_dir: Path) -> dict[str, str]:
    """PORT, PUBLIC_BASE_URL and TWILIO_API_BASE of the `make run` that is running now (var/run.json), if any.

    The file names the pid of `make run`'s process; a file left by one that died is ignored.
    """
    try:
        recorded = json.loads((var_dir / RUN_FILE).read_text())
        os.kill(int(recorded["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: str(recorded[name]) for name in RUN_VARIABLES if recorded.get(name)}


def _period_keys_dir(env: Mapping[str, str], environment: str, var_dir: Path) -> Path:
    """PERIOD_KEYS_DIR: required in production (a shared volume, never in a Redis backup);
    in development `var/period-keys`."""
    raw = env.get("PERIOD_KEYS_DIR", "").strip()
    if not raw:
        if environment == "production":
            raise SettingsError("PERIOD_KEYS_DIR is not set; it is required when TIPLINE_ENV=production: a "
                                "directory on storage every web and worker machine mounts, never inside a Redis "
                                "backup (README, \"Keys\").")
        return var_dir / "period-keys"
    if not Path(raw).is_absolute():
        raise SettingsError(f"PERIOD_KEYS_DIR must be an absolute path, not {raw!r}.")
    return Path(raw).resolve()


def _metrics_token(raw: str) -> str | None:
    """METRICS_TOKEN: unset or empty turns `/metrics` off; set, it must be hard to guess."""
    token = raw.strip()
    if token and len(token) < 32:
        raise SettingsError("METRICS_TOKEN must be at least 32 characters (generate one with `tipline secret new`), "
                            "or unset to turn /metrics off.")
    return token or None


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"PORT must be a number, not {raw!r}.") from None
    if not 0 < port < 65536:
        raise SettingsError(f"PORT must be between 1 and 65535, not {port}.")
    return port


def _bounded_int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}.")
    return value


def _key_list(name: str, raw: str) -> tuple[str, ...]:
    """`new,old,...`: each key at least 32 characters, none listed twice; the first is current."""
    listed = tuple(part.strip() for part in raw.split(","))
    if any(len(key) < 32 for key in listed):
        raise SettingsError(f"{name} must list keys of at least 32 characters each, comma-separated, the current "
                            "one first; generate one with `tipline secret new`.")
    if len(set(listed)) != len(listed):
        raise SettingsError(f"{name} lists the same key twice; list the current key first, then the old one.")
    return listed


def _base_url(name: str, raw: str) -> str:
    """An absolute http(s) URL with no query or fragment, without its trailing slash."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(f"{name} must be an absolute http:// or https:// URL without a query, not {raw!r}.")
    return raw.strip().rstrip("/")


def _https_url(name: str, raw: str) -> str:
    """An optional https:// URL ("" when unset)."""
    if not raw.strip():
        return ""
    url = _base_url(name, raw)
    if not url.startswith("https://"):
        raise SettingsError(f"{name} must be an https:// URL (Twilio posts to it), not {raw!r}.")
    return url


def _new_dev_secrets() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        # One master key, id "dev1": new tips are wrapped under the first key listed.
        "VAULT_KEYS": "dev1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # The key the console's audit trail is chained under (ivr/core/audit.py).
        "AUDIT_KEY": secrets.token_urlsafe(48),
    }


def _dev_secrets(var_dir: Path) -> dict[str, str]:
    """Read the generated development secrets, creating them (mode 0600) on first use.

    The web app and the worker start together, so creation is exclusive and the loser
    of the race reads what the winner wrote. A file from an older version that lacks a
    secret gets it added.
    """
    path = var_dir / "dev-secrets.json"
    var_dir.mkdir(parents=True, exist_ok=True)
    generated = _new_dev_secrets()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = _read_dev_secrets(path)
        if set(generated) <= set(existing):
            return existing
        merged = {**generated, **existing}
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(merged, out)
        os.replace(partial, path)
        return merged
    with os.fdopen(fd, "w") as out:
        json.dump(generated, out)
    return generated


def _read_dev_secrets(path: Path) -> dict[str, str]:
    for _ in range(50):
        try:
            secrets: dict[str, str] = json.loads(path.read_text())
            return secrets
        except ValueError:
            time.sleep(0.05)  # another process is still writing it
    raise SettingsError(f"{path} is not valid JSON; delete it to generate new development secrets.")
