"""`make run`: start the web app, one worker and (when REDIS_URL is unset) a local Redis.

All under honcho reading the Procfile; Ctrl-C stops every process.
"""

from __future__ import annotations

import os
import sys

from config.settings import PROJECT_ROOT, Settings, SettingsError


def banner(settings: Settings, local_redis: bool) -> str:
    base = settings.public_base_url
    lines = [
        "",
        "Tipline is starting: web app, worker" + (", local Redis (var/redis/, AOF on)" if local_redis else "") + ".",
        f"  Health:            curl {base}/healthz",
        "  A signed webhook:  .venv/bin/python -m dev.webhook /voice/incoming",
        f"  Real Twilio:       set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL (an https URL that",
        f"                     reaches this machine), then point the number's voice webhook (POST) at",
        f"                     PUBLIC_BASE_URL/voice/incoming. See README.md.",
    ]
    if settings.twilio_credentials_generated:
        lines.append("  Development credentials were generated in var/dev-secrets.json (no Twilio account needed).")
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
    # web first: honcho gives the first process $PORT and each later one $PORT + 100.
    processes = ["web", "worker"] + (["redis"] if local_redis else [])
    print(banner(settings, local_redis), flush=True)
    os.execvpe("honcho", ["honcho", "start", "-f", "Procfile", *processes], env)


if __name__ == "__main__":
    raise SystemExit(main())
