"""`make run`: start the web app, one worker, the clock and (when REDIS_URL is unset) a local Redis.

Without real Twilio credentials it also starts the provider stand-in (Twilio's REST API
on a free loopback port, `dev/standin/server.py`) and points every process's
TWILIO_API_BASE at it, so the whole pipeline runs and `dev.simulator` can place calls.
All under honcho reading dev/Procfile.dev (the `Procfile`'s production processes, web, worker
and clock, plus the local Redis and the stand-in); Ctrl-C stops every process.
"""

from __future__ import annotations

import os
import sys

from config.settings import PROJECT_ROOT, Settings, SettingsError
from dev.processes import free_port

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
# Production's processes (the Procfile's lines, as they are) and the development-only ones.
DEV_PROCFILE = "dev/Procfile.dev"


def simulator_command(settings: Settings, standin_url: str) -> str:
    """How to place a test call against this `make run`, with the environment it needs."""
    environment = f"TWILIO_API_BASE={standin_url} "
    if settings.public_base_url != DEFAULT_PUBLIC_BASE_URL:
        environment += f"PUBLIC_BASE_URL={settings.public_base_url} "
    return environment + '.venv/bin/python -m dev.simulator --say "There is a man selling drugs outside the school"'


def banner(settings: Settings, local_redis: bool, standin_url: str | None = None) -> str:
    base = settings.public_base_url
    started = ["web app", "worker", "clock"] + (["local Redis (var/redis/, AOF on)"] if local_redis else [])
    started += [f"provider stand-in ({standin_url})"] if standin_url else []
    lines = [
        "",
        "Tipline is starting: " + ", ".join(started) + ".",
        f"  Health:            curl {base}/healthz",
        "  A signed webhook:  .venv/bin/python -m dev.webhook /voice/incoming",
        "  Real Twilio:       set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL (an https URL that",
        "                     reaches this machine), then point the number's voice webhook (POST) at",
        "                     PUBLIC_BASE_URL/voice/incoming. See README.md.",
        f"  Handlers' console: {base}/console/login; make the first admin (prints an enrolment link):",
        "                       .venv/bin/tipline handler add --role admin YOURNAME",
    ]
    if settings.twilio_credentials_generated:
        lines.append("  Development credentials were generated in var/dev-secrets.json (no Twilio account needed).")
    if standin_url:
        lines += ["  Place a test call (speaks with espeak-ng, records, prints the reference and PIN):",
                  f"    {simulator_command(settings, standin_url)}"]
    lines += ["  Stop everything:   Ctrl-C", ""]
    return "\n".join(lines)


def main() -> int:
    os.chdir(PROJECT_ROOT)
    env = dict(os.environ)
    local_redis = not env.get("REDIS_URL")
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    env["REDIS_URL"] = settings.redis_url
    # No real Twilio account: Twilio's REST API is the local stand-in, for every process.
    standin_url = f"http://127.0.0.1:{free_port()}" if settings.twilio_credentials_generated else None
    if standin_url:
        env["TWILIO_API_BASE"] = standin_url
    # web first: honcho gives the first process $PORT and each later one $PORT + 100.
    processes = ["web", "worker", "clock"] + (["redis"] if local_redis else []) + (["provider"] if standin_url else [])
    print(banner(settings, local_redis, standin_url), flush=True)
    # honcho from PATH (`make run` puts the venv's bin first), with an argument list and no shell
    os.execvpe("honcho", ["honcho", "start", "-f", DEV_PROCFILE, *processes], env)  # nosec B607  # see above


if __name__ == "__main__":
    raise SystemExit(main())
