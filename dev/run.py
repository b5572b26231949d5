"""`make run`: start the web app, one worker, the clock and (when REDIS_URL is unset) a local Redis.

Without real Twilio credentials it also starts the provider stand-in (Twilio's REST API
on a free loopback port, `dev/standin/server.py`) and points every process's
TWILIO_API_BASE at it, so the whole pipeline runs and `dev.simulator` can place calls.
All under honcho reading dev/Procfile.dev (the `Procfile`'s production processes, web, worker
and clock, plus the local Redis and the stand-in); Ctrl-C stops every process and exits 0.

While it runs, var/run.json (mode 0600) records the port, PUBLIC_BASE_URL and the stand-in's
address, so `tipline`, `dev.webhook` and `dev.simulator` typed in a second terminal, where
none of them is set, talk to this `make run` (config/settings.py, `running_with`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from config.settings import PROJECT_ROOT, RUN_FILE, Settings, SettingsError
from dev.processes import free_port

# Production's processes (the Procfile's lines, as they are) and the development-only ones.
DEV_PROCFILE = "dev/Procfile.dev"


def simulator_command(settings: Settings, standin_url: str) -> str:
    """How to place a test call against this `make run` (var/run.json tells the simulator where it runs)."""
    return '.venv/bin/python -m dev.simulator --say "There is a man selling drugs outside the school"'


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
        lines += ["  Place a test call (speaks with festival, records, prints the reference and PIN):",
                  f"    {simulator_command(settings, standin_url)}",
                  "  Send a test text (a whole conversation: hello, language, topic, message, DONE):",
                  '    .venv/bin/python -m dev.simulator --text "There is a man selling drugs outside the school"']
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
    # Every process links and signs with the web app's address (honcho gives each later process $PORT + 100).
    env["PUBLIC_BASE_URL"] = settings.public_base_url
    # web first: honcho gives the first process $PORT.
    processes = ["web", "worker", "clock"] + (["redis"] if local_redis else []) + (["provider"] if standin_url else [])
    print(banner(settings, local_redis, standin_url), flush=True)
    run_file = record_run(settings.var_dir, {"PORT": str(settings.port), "PUBLIC_BASE_URL": settings.public_base_url,
                                             "TWILIO_API_BASE": standin_url or ""})
    try:
        with terminal_to_ourselves():
            return supervise(["honcho", "start", "-f", DEV_PROCFILE, *processes], env)
    finally:
        run_file.unlink(missing_ok=True)


@contextlib.contextmanager
def terminal_to_ourselves() -> Iterator[None]:
    """Under `make run`, take the terminal's Ctrl-C from make, and give it back at the end.

    The terminal sends Ctrl-C's SIGINT to its whole foreground process group: under make,
    that is make as well as us. However cleanly we stop, GNU make then kills itself with
    SIGINT ("make: *** [Makefile: run] Interrupt", exit status 130). So when we share a
    process group with our parent, we move into one of our own and make it the terminal's
    foreground: Ctrl-C reaches us alone, we stop everything, and make sees us exit 0.
    Started directly from a shell (our own group already) or without a terminal: nothing.
    """
    try:
        terminal = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        yield
        return
    try:
        original = os.tcgetpgrp(terminal)
        if original != os.getpgrp() or os.getpgrp() == os.getpid():
            yield  # in the background, or a group of our own already
            return
        os.setpgid(0, 0)
        _set_foreground(terminal, os.getpgrp())
        try:
            yield
        finally:
            _set_foreground(terminal, original)
    finally:
        os.close(terminal)


def _set_foreground(terminal: int, group: int) -> None:
    """tcsetpgrp from a group that may be in the background: ignore SIGTTOU while at it."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(terminal, group)
    except OSError:
        pass  # the parent's group is gone (make killed meanwhile): the shell takes the terminal back
    finally:
        signal.signal(signal.SIGTTOU, previous)


def record_run(var_dir: Path, running: dict[str, str]) -> Path:
    """Write var/run.json (mode 0600): what a second terminal needs to reach this `make run`."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / RUN_FILE
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump({"pid": os.getpid(), **running}, out)
    os.replace(partial, path)
    return path


def supervise(command: list[str], env: dict[str, str]) -> int:
    """Run honcho until it ends; Ctrl-C (or SIGTERM) reaches it once, and a stop we asked for exits 0."""
    # honcho from PATH (`make run` puts the venv's bin first), with an argument list and no shell.
    # Its own session: the terminal's Ctrl-C comes to us alone, and we pass it on once.
    honcho = subprocess.Popen(command, env=env, start_new_session=True)  # nosec B603  # see above
    stopping: list[int] = []

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(signum)
            honcho.send_signal(signum)

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    code = honcho.wait()
    # honcho answers a stop with 130 or 143 (128 + the signal) even when every process ended cleanly.
    return 0 if stopping and code in (0, 128 + stopping[0]) else code


if __name__ == "__main__":
    raise SystemExit(main())
