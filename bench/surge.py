"""Can 2 cores ride out a TV appeal? A surge of calls and texts through the real processes.

The schedule (issue 14): 600 calls, each a 30-90 s spoken message, and 200 whole SMS
conversations over 10 minutes, a tenth of them on an urgent topic; `--scale` shrinks
calls, texts and duration together. Twilio's side (dev/twilio) places them in real time
from a thread pool, over HTTP to gunicorn, with the provider stand-in holding the
recordings the workers fetch. Real parts: redis-server on a free loopback port, gunicorn
(config/gunicorn.conf.py), `--workers` transcription workers (`python -m workers.run`),
the clock, and the stand-in, each its own process, as production runs them.

Once the clock has minted 100 PINs ahead (as on a line that has been up half a minute),
first the same server idle: a few calls and texts with the workers waiting (their
recordings are silence, so there is almost nothing to transcribe), for the webhook
latency the surge is compared with. Then the surge, and the wait until every recording is
transcribed, with a probe texter every 10 s to time the web while it drains. It prints a
table with PASS/FAIL for each target, and writes a plot of queue depth and webhook p99
over time to bench/out/surge.png.

Usage: `.venv/bin/python bench/surge.py [--scale 0.1] [--workers N] [--smoke]`
(`make bench` runs scale 0.1, `make bench-surge` the whole surge: ~17 minutes on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import redis  # noqa: E402
from rq import Worker  # noqa: E402

from bench.surge_clips import Clip, clip_pool, clip_texts  # noqa: E402
from bench.surge_report import (  # noqa: E402
    Figures,
    latency_by_path,
    lost_and_duplicated,
    percentile,
    plot,
    table,
    window_p99s,  # noqa: E402
)
from bench.surge_traffic import PUBLIC_BASE_URL, Arrival, Surge, TimedTransport, WebhookTiming, appeal_schedule  # noqa: E402
from bench.surge_watch import Watch  # noqa: E402
from dev.phone_audio import silence  # noqa: E402
from dev.processes import free_port, process_environment, start, wait_for_health, wait_until  # noqa: E402
from dev.redis_server import NoRedisServer, RedisServer  # noqa: E402
from dev.standin.client import StandIn, StandInUnreachable  # noqa: E402
from dev.twilio.calls import TwilioLike  # noqa: E402
from ivr.core import keys  # noqa: E402
from ivr.core.prompts import load_menus  # noqa: E402

FULL_CALLS, FULL_TEXTS, FULL_SECONDS = 600, 200, 600.0
# Two on 2 cores: one worker's recogniser has 2 threads, but fetching, decoding, the VAD
# and the beam search leave cores idle that a second worker fills (README, "How many
# transcription workers a surge needs", has the figures).
DEFAULT_WORKERS = 2
IDLE_CALLS, IDLE_TEXTS = 20, 8
WARM_UP_CALLS = 4
# PINs the clock has minted ahead before the idle measurement starts: about what a line up
# for half a minute holds, and more than a tenth of the surge takes before the clock adds more.
PIN_STOCK_READY = 100
PROBE_SECONDS = 10.0  # one texter a 10 s window: a whole appeal's drain stays within 1,000 numbers
PROBE_TEXT = Arrival(at=0.0, channel="sms", category_digit="1", urgent=False, clip=0)
OUT_DIR = PROJECT_ROOT / "bench" / "out"
FETCHED_RECORDING = re.compile(r"/Recordings/(RE[0-9a-f]{32})\.wav$")


@dataclass(frozen=True)
class Plan:
    """How big this run is: the surge's share of the full appeal, or the smoke run's few."""

    scale: float
    smoke: bool
    calls: int
    texts: int
    seconds: float
    clip_count: int
    clip_shortest: float
    clip_longest: float


def plan_for(args: argparse.Namespace) -> Plan:
    if args.smoke:
        return Plan(scale=0.0, smoke=True, calls=3, texts=2, seconds=3.0, clip_count=3, clip_shortest=3, clip_longest=6)
    return Plan(scale=args.scale, smoke=False, calls=max(1, round(FULL_CALLS * args.scale)),
                texts=max(1, round(FULL_TEXTS * args.scale)), seconds=FULL_SECONDS * args.scale,
                clip_count=20, clip_shortest=30, clip_longest=90)


def environment(work: Path, redis_url: str, standin_url: str) -> dict[str, str]:
    """What every process runs with: development mode, throw-away keys, the stand-in as provider."""
    var = work / "var"
    (var / "tmp").mkdir(parents=True)
    (var / "period-keys").mkdir(mode=0o700)
    return process_environment({
        "TIPLINE_ENV": "development", "PUBLIC_BASE_URL": PUBLIC_BASE_URL, "REDIS_URL": redis_url,
        "TIPLINE_VAR_DIR": str(var), "PERIOD_KEYS_DIR": str(var / "period-keys"), "TMPDIR": str(var / "tmp"),
        "SECRET_KEY": secrets.token_urlsafe(48), "AUDIT_KEY": secrets.token_urlsafe(48),
        "VAULT_KEYS": "surge1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16), "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_API_BASE": standin_url, "LOG_LEVEL": "WARNING",
    })


class Processes:
    """The processes the bench started, by kind; each stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, kind: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.logs / f"{re.sub(r'[^a-z]+', '-', kind).strip('-')}-{len(self.started)}.log"
        process = start([sys.executable, *command], {**self.env, **(extra_env or {})}, log)
        self.started.append((kind, process))
        return process

    def kinds(self) -> dict[int, str]:
        return {process.pid: kind for kind, process in self.started}

    def stop(self) -> None:
        """Last started, first stopped: the workers finish their jobs while the stand-in still answers."""
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_for_standin(standin: StandIn) -> None:
    def answers() -> bool:
        try:
            standin.ping()
            return True
        except StandInUnreachable:
            return False

    wait_until(answers, timeout=30, what="the provider stand-in")


def await_transcripts(watch: Watch, timeout: float, probe: Surge | None = None) -> None:
    """Until every answered arrival's first part is final (a text's is at once), or `timeout`.

    With `probe`, a texter arrives every few seconds meanwhile: the web's latency is
    measured while the backlog drains too, not only while calls come in."""
    deadline = time.monotonic() + timeout
    next_probe = time.monotonic()
    while watch.pending() and time.monotonic() < deadline:
        if probe and time.monotonic() >= next_probe:
            probe.outcomes.append(probe.arrive(PROBE_TEXT))
            next_probe += PROBE_SECONDS
        time.sleep(0.5)


def idle_latency(twilio: TwilioLike, transport: TimedTransport, connection: redis.Redis, processes: Processes,
                 plan: Plan) -> list[WebhookTiming]:
    """Webhook timings with the workers waiting: the same calls and texts, two at a time, each
    call's recording silence; after a warm-up (each gunicorn worker's first requests load
    what it needs), and once the workers have cleared those recordings."""
    idle_clip = Clip(wav=silence(3), seconds=3)
    watch = Watch(connection, processes.kinds()).start()
    warm_up = (min(WARM_UP_CALLS, plan.calls), 1)
    for calls, texts in (warm_up, (min(IDLE_CALLS, plan.calls), min(IDLE_TEXTS, plan.texts))):
        transport.timings.clear()
        schedule = appeal_schedule(calls, texts, duration=0.0, clips=1, urgent_digits="2", other_digits="1", seed=1)
        Surge(twilio, [idle_clip], threads=2, on_answered=watch.await_transcript).play(schedule)
        await_transcripts(watch, timeout=120)
    watch.stop()
    timings = list(transport.timings)
    transport.timings.clear()
    return timings


def run(plan: Plan, workers: int, plot_path: Path) -> int:
    menus = load_menus()
    urgent_digits = "".join(d for d in "123456789" if (c := menus.category_for_digit(d)) and c.urgent)
    other_digits = "".join(d for d in "123456789" if (c := menus.category_for_digit(d)) and not c.urgent)
    started = time.monotonic()
    clips = clip_pool(clip_texts(plan.clip_count, plan.clip_shortest, plan.clip_longest))
    print(f"{len(clips)} clips of {min(c.seconds for c in clips)}-{max(c.seconds for c in clips)} s "
          f"ready in {time.monotonic() - started:.0f} s (cached under {OUT_DIR.relative_to(PROJECT_ROOT)}/clips)",
          flush=True)
    work = Path(tempfile.mkdtemp(prefix="tipline-surge-"))
    (work / "logs").mkdir()
    try:
        redis_server = RedisServer(work / "redis", appendfsync="always")
        (work / "redis").mkdir()
        redis_server.start()
    except NoRedisServer as error:
        print(f"{error} (make bench installs it)", file=sys.stderr)
        return 2
    standin_url = f"http://127.0.0.1:{free_port()}"
    env = environment(work, redis_server.url, standin_url)
    processes = Processes(env, work / "logs")
    connection = redis_server.client()
    try:
        standin = StandIn(standin_url)
        processes.start("provider stand-in", ["-m", "dev.standin"])
        wait_for_standin(standin)
        web_port = free_port()
        processes.start("web (gunicorn)", ["-m", "gunicorn", "-c", "config/gunicorn.conf.py", "ivr.wsgi:app"],
                        {"PORT": str(web_port)})
        processes.start("clock", ["-m", "workers.clock"])
        for _ in range(workers):
            processes.start("transcription worker", ["-m", "workers.run"])
        wait_for_health(f"http://127.0.0.1:{web_port}")
        wait_until(lambda: Worker.count(connection=connection) >= workers, timeout=120,
                   what=f"{workers} worker(s) registered")
        if not plan.smoke:  # a line that has run a while: the clock has PINs minted ahead (ivr/core/pin_pool.py)
            wait_until(lambda: connection.llen(keys.PIN_POOL) >= PIN_STOCK_READY, timeout=120,
                       what=f"the clock to mint {PIN_STOCK_READY} PINs ahead")
        transport = TimedTransport(f"http://127.0.0.1:{web_port}")
        twilio = TwilioLike(transport.post, PUBLIC_BASE_URL, env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"],
                            provider=standin)
        idle_timings = idle_latency(twilio, transport, connection, processes, plan)
        idle_ms = [t.milliseconds for t in idle_timings]
        print(f"idle webhook p50 {percentile(idle_ms, 0.5):.1f} ms, p99 {percentile(idle_ms, 0.99):.1f} ms; "
              f"the surge begins", flush=True)
        # Only the surge's recordings count as fetched below.
        fetched_before = {m.group(1) for r in standin.log() if (m := FETCHED_RECORDING.search(r.path))}

        schedule = appeal_schedule(plan.calls, plan.texts, plan.seconds, len(clips), urgent_digits, other_digits)
        audio_seconds = sum(clips[a.clip].seconds for a in schedule if a.channel == "voice")
        watch = Watch(connection, {**processes.kinds(), redis_server.process.pid: "redis-server"}
                      if redis_server.process else processes.kinds()).start()
        surge = Surge(twilio, clips, on_answered=watch.await_transcript)
        surge_start = time.monotonic()
        last_arrival = surge.play(schedule)
        print(f"all {len(schedule)} arrivals through in {last_arrival - surge_start:.0f} s; draining "
              f"{audio_seconds} s of audio", flush=True)
        probes = Surge(twilio, clips, on_answered=watch.await_transcript)
        await_transcripts(watch, timeout=120 + audio_seconds, probe=probes)
        watch.stop()

        stored = {key.decode().rpartition(":")[2] for key in connection.scan_iter(match=keys.tip("*"), count=1000)}
        references = [o.reference for o in surge.outcomes + probes.outcomes if o.reference]
        parts_pipe = connection.pipeline(transaction=False)
        for reference in references:
            parts_pipe.hget(keys.tip(reference), "parts")
        parts = {r: int(raw or 0) for r, raw in zip(references, parts_pipe.execute(), strict=True)}
        fetches = Counter(m.group(1) for r in standin.log() if r.method == "GET"
                          and (m := FETCHED_RECORDING.search(r.path)) and m.group(1) not in fetched_before)
    finally:
        processes.stop()
        redis_server.stop()
        load = os.getloadavg()
        # The processes' logs (WARNING and up, numbers redacted) stay for a look at what failed.
        shutil.rmtree(OUT_DIR / "logs", ignore_errors=True)
        shutil.copytree(work / "logs", OUT_DIR / "logs")
        shutil.rmtree(work, ignore_errors=True)

    voice = [o for o in surge.outcomes if o.arrival.channel == "voice" and o.reference in watch.finished]
    delays = {o.reference: watch.finished[o.reference][0] - o.callback_answered for o in voice}
    finish_times = [watch.finished[o.reference][0] for o in voice]
    last_transcript = max(finish_times, default=last_arrival)
    first_callback = min((o.callback_answered for o in voice), default=surge_start)
    # The surge's webhooks, and the probe texts' while the backlog drained.
    surge_timings = [t for t in transport.timings if surge_start <= t.sent <= last_transcript]
    windows = window_p99s(surge_timings, surge_start, last_transcript)
    lost, duplicated = lost_and_duplicated(surge.outcomes + probes.outcomes, watch.finished, stored, parts, fetches)
    figures = Figures(
        scale=plan.scale, smoke=plan.smoke, probes=len(probes.outcomes), workers=workers, calls=plan.calls,
        texts=plan.texts,
        idle_p50=percentile(idle_ms, 0.5), idle_p99=percentile(idle_ms, 0.99),
        by_path=latency_by_path(idle_timings, surge_timings),
        surge_p50=percentile([t.milliseconds for t in surge_timings], 0.5),
        surge_p99=percentile([t.milliseconds for t in surge_timings], 0.99),
        worst_window_p99=max((w[1] for w in windows), default=float("nan")),
        webhook_errors=sum(1 for t in surge_timings if not 200 <= t.status < 300),
        urgent_delays=[delays[o.reference] for o in voice if o.arrival.urgent],
        other_delays=[delays[o.reference] for o in voice if not o.arrival.urgent],
        peak_urgent_depth=max((d.urgent for d in watch.depths), default=0),
        peak_other_depth=max((d.other for d in watch.depths), default=0),
        drain_seconds=max(0.0, last_transcript - last_arrival), peak_rss=watch.peak_rss_by_kind(),
        niceness=watch.niceness,
        lost=lost, duplicated=duplicated, audio_seconds=sum(o.seconds for o in voice),
        busy_seconds=last_transcript - first_callback,
        load=" ".join(f"{value:.2f}" for value in load))
    print()
    print(table(figures))
    print(f"plot: {plot(figures, watch.depths, windows, surge_start, last_arrival, plot_path)}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="share of the full appeal (0.1: 60 calls, "
                        "20 texts over 1 minute)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="transcription workers to start")
    parser.add_argument("--smoke", action="store_true", help="3 calls and 2 texts of short clips: does it run?")
    parser.add_argument("--plot", type=Path, default=OUT_DIR / "surge.png", help="where the PNG goes")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.workers < 1:
        parser.error("--scale must be above 0 and --workers at least 1")
    plan = plan_for(args)
    print(f"surge at scale {'smoke' if args.smoke else f'{plan.scale:g}'}: {plan.calls} calls and {plan.texts} "
          f"texts over {plan.seconds:.0f} s, {args.workers} transcription worker(s); load {os.getloadavg()}",
          flush=True)
    return run(plan, args.workers, args.plot)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
