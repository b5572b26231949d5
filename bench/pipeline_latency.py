"""How long from a recording's status callback to its transcript in the tip?

Target (issue: the pipeline): a 30-second message is a transcribed tip within 10 s of its
callback when the queue is empty. The tip itself exists, queued for handlers, the moment
the callback is answered; this measures the worker's part: fetch from the provider,
transcribe offline, commit, delete at the provider.

Real parts: a throw-away redis-server on a free loopback port, the provider stand-in in a
thread, the app through Flask's test client (the callback's own latency is printed too),
and a real worker process (`python -m workers.run`) already running with its model
loaded, as in production. Speech is espeak-ng at 8 kHz, padded to about 30 s of talk.

Usage: `.venv/bin/python bench/pipeline_latency.py [--runs N]`
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from config.settings import Settings  # noqa: E402
from dev.phone_audio import speak  # noqa: E402
from dev.redis_server import NoRedisServer, RedisServer  # noqa: E402
from dev.standin.client import StandIn  # noqa: E402
from dev.standin.server import StandInServer  # noqa: E402
from dev.twilio.calls import TwilioLike  # noqa: E402
from ivr import create_app  # noqa: E402
from ivr.core.tips import FINAL_PART_STATUSES  # noqa: E402

TARGET_SECONDS = 10.0
MESSAGE = ("There is a man selling drugs outside the school on Station Road every Friday night. "
           "He drives a silver car and he carries a knife in his jacket. The boys he uses are "
           "about fourteen years old and they wait by the bus stop after school. "
           "He keeps the drugs in a flat above the chip shop on the corner of Mill Lane. "
           "Another man collects the money on Sunday mornings in a white van with a broken light. "
           "Everybody on the estate knows about it but nobody wants to say anything because they are scared. "
           "Please do something before one of the children gets hurt.")


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tipline-latency-"))
    try:
        redis_server = RedisServer(work, appendfsync=None)
        redis_server.start()
    except NoRedisServer as error:
        print(f"{error} (make bench installs it)", file=sys.stderr)
        return 2
    redis_port = redis_server.port
    sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    worker = None
    try:
        with StandInServer(sid, token) as standin_server:
            env = {**os.environ, "TIPLINE_VAR_DIR": str(work / "var"), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                   "SECRET_KEY": secrets.token_urlsafe(48), "TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token,
                   "VAULT_KEYS": "b1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                   "TWILIO_API_BASE": standin_server.url, "PUBLIC_BASE_URL": "https://tipline.example.org",
                   "LOG_LEVEL": "WARNING"}
            settings = Settings.from_env(env)
            app = create_app(settings)
            client = app.test_client()

            def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
                parts = urlsplit(url)
                response = client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form,
                                       headers=headers)
                return response.status_code, response.get_data(as_text=True)

            standin = StandIn(standin_server.url)
            twilio = TwilioLike(transport, settings.public_base_url, sid, token, provider=standin)
            worker = subprocess.Popen([sys.executable, "-m", "workers.run"], cwd=PROJECT_ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            audio = speak(MESSAGE, "en")
            seconds = (len(audio) - 44) / 16000
            tips = app.extensions["tipline"].tips
            # A warm-up call: the worker is up and its model loaded before we time anything.
            results = []
            for run in range(args.runs + 1):
                call = twilio.call("anonymous").dials().presses("1").presses("1")
                call.records(audio=audio, deliver_callback=False)
                started = time.monotonic()
                (answer,) = call.deliver_recording_callbacks()
                callback_ms = (time.monotonic() - started) * 1000
                assert answer.status == 204, answer.status
                reference = tips.queue.tip_ids()[-1]
                elapsed = wait_for(lambda reference=reference: tips.get(reference).status in FINAL_PART_STATUSES,
                                   120, "the transcript")
                gone = wait_for(lambda: not standin.recordings(), 30, "the deletion") + elapsed
                if run:
                    results.append((callback_ms, elapsed, gone, tips.get(reference).status))
    finally:
        if worker:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"message: {seconds:.1f} s of espeak-ng speech at 8 kHz; worker already running, queue empty")
    print(f"{'run':>4} {'callback ms':>12} {'to transcript s':>16} {'to deleted s':>13}  status")
    for run, (callback_ms, elapsed, gone, status) in enumerate(results, start=1):
        print(f"{run:>4} {callback_ms:>12.1f} {elapsed:>16.2f} {gone:>13.2f}  {status}")
    worst = max(elapsed for _, elapsed, _, _ in results)
    print(f"worst callback -> transcribed tip: {worst:.2f} s (target <= {TARGET_SECONDS:.0f} s for ~30 s): "
          f"{'PASS' if worst <= TARGET_SECONDS else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
