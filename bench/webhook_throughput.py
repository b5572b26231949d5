"""How fast does one voice step answer, compared with the least a WSGI app can do?

The request is one whole step of a call as Twilio makes it: `POST /voice/language?t=<token>`
with Twilio's form fields (Digits=2) and a valid `X-Twilio-Signature`. Our app checks the
signature, opens the sealed call-state token, seals the next one and renders the category
menu's TwiML. The same POST goes to `bench/bare_app.py`, a WSGI callable that only reads
the body and answers a fixed TwiML, served by gunicorn with the same settings
(`-c config/gunicorn.conf.py`; WEB_CONCURRENCY and WEB_THREADS are passed through), so the
difference is what our code costs.

Load: `wrk -t2 -c16 -d10s --latency` after a short warm-up, against each app in turn, with
a throw-away redis-server on a free loopback port. The workers' CPU time during the load
is read from /proc: CPU per request is the steadier comparison on a shared machine, and a
run where one worker took all the kept-alive connections (half the throughput, for
reasons that are not the app's) is repeated. Then the largest RSS of our gunicorn
workers is read from /proc.

Targets (reported as PASS/FAIL; the script exits 0 either way, non-zero only when it
could not run):
- our requests/s at least 0.40 of the bare app's (issue 14; it was 0.26-0.30 before the
  call-state, signature and URL work of ivr/core/call_state.py, ivr/edge.py, ivr/voice/script.py);
- our p99 latency under 20 ms at 16 connections;
- each web worker under 100 MB resident.

`--profile` instead runs the step in-process through Flask's test client under cProfile
and prints where the time goes.

Usage: `.venv/bin/python bench/webhook_throughput.py [--profile [--requests N]]` (or `make bench`).
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import redis  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from config.settings import Settings  # noqa: E402
from dev.processes import free_port  # noqa: E402
from dev.redis_server import NoRedisServer, RedisServer  # noqa: E402
from ivr.core.call_state import CallState, CallStateCodec  # noqa: E402

GUNICORN_CONFIG = "config/gunicorn.conf.py"
APPS = {"bare": "bench.bare_app:app", "ours": "ivr.wsgi:app"}
STEP_PATH = "/voice/language"

WRK_THREADS, WRK_CONNECTIONS, WRK_DURATION_S = 2, 16, 10
WARMUP_DURATION_S = 2

TARGET_RATIO = 0.40
TARGET_P99_MS = 20.0
TARGET_WORKER_MB = 100.0

# wrk opens its connections at once and keeps them alive; now and then one gthread worker
# accepts (nearly) all of them and the other idles, which halves requests/s for reasons
# that have nothing to do with the app. Such a run is repeated with fresh connections.
UNEVEN_SHARE = 0.75
LOAD_ATTEMPTS = 3

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


class BenchError(RuntimeError):
    """The benchmark could not run (a tool is missing, a server did not start, a check failed)."""


@dataclass(frozen=True)
class Step:
    """The one request every load run sends: the same path, body and headers to both apps."""

    path_with_query: str
    form: dict[str, str]
    signature: str

    @property
    def body(self) -> str:
        return urlencode(self.form)

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": self.signature}


@dataclass(frozen=True)
class LoadResult:
    """What we keep from one wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_responses: int
    socket_errors: int


@dataclass(frozen=True)
class AppRun:
    """One app's figures: the load, its workers' CPU during the load, and their memory after it."""

    load: LoadResult
    worker_cpu_s: tuple[float, ...]
    largest_rss_mb: float

    @property
    def cpu_ms_per_request(self) -> float:
        """Worker CPU per request: steadier than requests/s on a shared machine."""
        return sum(self.worker_cpu_s) / self.load.requests * 1000 if self.load.requests else 0.0

    @property
    def is_uneven(self) -> bool:
        """One worker did most of the work while another idled (see UNEVEN_SHARE)."""
        total = sum(self.worker_cpu_s)
        return len(self.worker_cpu_s) > 1 and total > 0 and max(self.worker_cpu_s) / total > UNEVEN_SHARE

    @property
    def cpu_split(self) -> str:
        """Each worker's share of the CPU, e.g. 50/50; 100/0 means one worker took every connection."""
        total = sum(self.worker_cpu_s) or 1.0
        return "/".join(f"{seconds / total * 100:.0f}" for seconds in sorted(self.worker_cpu_s, reverse=True))


# -- environment and request ------------------------------------------------------------------


def app_environment(port: int, redis_port: int, var_dir: Path, secret_key: str,
                    account_sid: str, auth_token: str) -> dict[str, str]:
    """The variables `Settings.from_env` reads, for one app on one port; the rest is inherited.

    WEB_CONCURRENCY / WEB_THREADS come through from our own environment, so both apps get
    whatever the caller set.
    """
    return {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TIPLINE_VAR_DIR": str(var_dir),
        "SECRET_KEY": secret_key,
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "LOG_LEVEL": "WARNING",
    }


def build_step(public_base_url: str, secret_key: str, account_sid: str, auth_token: str) -> Step:
    """A language-menu keypress as Twilio sends it, with a fresh token and a valid signature.

    Digits=2 chooses a language, so our app takes its main path (open the token, seal the
    next one, render the category menu). The identifying fields are included because
    Twilio sends them and the edge must parse (and drop) them.
    """
    token = CallStateCodec(secret_key).dump(CallState())
    if isinstance(token, bytes):  # itsdangerous gives bytes when the payload serializer does
        token = token.decode("ascii")  # older CallStateCodec.dump returned bytes
    path_with_query = f"{STEP_PATH}?t={token}"
    caller, line = "+447700900123", "+448005550111"
    form = {
        "AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": "CA" + secrets.token_hex(16),
        "CallStatus": "in-progress", "Direction": "inbound",
        "From": caller, "Caller": caller, "To": line, "Called": line,
        "FromCity": "LONDON", "FromState": "", "FromZip": "E1 6AN", "FromCountry": "GB",
        "CallerCity": "LONDON", "CallerState": "", "CallerZip": "E1 6AN", "CallerCountry": "GB",
        "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "GB", "CalledCountry": "GB",
        "StirVerstat": "TN-Validation-Passed-A",
        "Digits": "2", "FinishedOnKey": "", "msg": "Gather End",
    }
    signature = RequestValidator(auth_token).compute_signature(public_base_url + path_with_query, form)
    return Step(path_with_query=path_with_query, form=form, signature=signature)


def gunicorn_shape() -> str:
    """The worker settings config/gunicorn.conf.py will pick, for the report's header."""
    workers = os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count()))
    threads = os.environ.get("WEB_THREADS", "2")  # config/gunicorn.conf.py's default
    extra = os.environ.get("GUNICORN_CMD_ARGS")
    return f"workers={workers} threads={threads}" + (f", GUNICORN_CMD_ARGS={extra!r}" if extra else " (gthread)")


# -- child processes --------------------------------------------------------------------------


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it has not gone within STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def redis_server(work_dir: Path) -> Iterator[int]:
    """A throw-away redis-server on a free loopback port (never 6379), stopped on exit."""
    data_dir = work_dir / "redis"
    data_dir.mkdir()
    server = RedisServer(data_dir, appendfsync=None, log=work_dir / "redis.log")
    try:
        server.start(timeout=STARTUP_TIMEOUT_S)
    except (NoRedisServer, redis.RedisError) as error:
        raise BenchError(f"redis-server did not start ({error}):\n{tail(work_dir / 'redis.log')}") from None
    try:
        yield server.port
    finally:
        server.stop()


def wait_for_tcp(port: int, process: subprocess.Popen, name: str, log: Path) -> None:
    """Return once something accepts on the port; fail (with the log's tail) if the process died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode}:\n{tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on port {port} within {STARTUP_TIMEOUT_S:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    """The end of a child's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def gunicorn(app: str, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """gunicorn with our config serving `app`; the master is stopped (SIGTERM, wait) on exit.

    Run from the project root so that the config path and `bench.bare_app` resolve. Its
    output (the access log included) goes to a file: the same cost for both apps.
    """
    command = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG, app]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)


def wait_until_answering(base_url: str, process: subprocess.Popen, log: Path) -> None:
    """Return once a worker answers HTTP at all (any status); fail if gunicorn exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with {process.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # the bare app answers 200 to anything, but any HTTP answer means "up"
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"gunicorn did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{tail(log)}")


def post_step(base_url: str, step: Step) -> tuple[int, str]:
    """One POST of the step with urllib: the check that the request is what we think it is."""
    request = urllib.request.Request(base_url + step.path_with_query, data=step.body.encode(),
                                     headers=step.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def check_ours_accepts(base_url: str, step: Step) -> None:
    """Fail loudly unless our app takes the step to the category menu.

    A 403 (bad signature) or a restart (bad token: the language menu again, also a
    <Gather>) would measure the wrong path, so the next step's action URL must be there.
    """
    status, body = post_step(base_url, step)
    if status != 200 or "<Response>" not in body or "<Gather" not in body or "/voice/category?t=" not in body:
        raise BenchError(f"our app did not take the step to the category menu (signature or token wrong?): "
                         f"HTTP {status}\n{body[:500]}")


def worker_pids(master_pid: int) -> list[int]:
    """gunicorn's workers: the processes whose parent is the master, found through /proc."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # the process went away while we looked
        match = re.search(r"^PPid:\s+(\d+)$", text, re.MULTILINE)
        if match and int(match.group(1)) == master_pid:
            children.append(int(status.parent.name))
    return children


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User plus system CPU time of each pid so far, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    return used


def largest_rss_mb(pids: list[int]) -> float:
    """The largest VmRSS among the pids, in MB (MiB, as /proc counts kB = KiB)."""
    largest_kb = 0
    for pid in pids:
        try:
            match = re.search(r"^VmRSS:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
        except OSError:
            continue
        if match:
            largest_kb = max(largest_kb, int(match.group(1)))
    return largest_kb / 1024


# -- wrk ----------------------------------------------------------------------------------------


def wrk_script(step: Step, path: Path) -> Path:
    """The Lua script that makes wrk send our POST: method, form body and headers."""
    def lua_string(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        return f'"{escaped}"'

    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(step.body)}"]
    lines += [f"wrk.headers[{lua_string(name)}] = {lua_string(value)}" for name, value in step.headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, duration_s: int) -> LoadResult:
    """Run wrk once and parse its report."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration_s}s", "--latency", "-s", str(script),
               url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0 or done.stderr.strip():
        # wrk reports a broken Lua script on stderr and then sends GETs anyway.
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = parse_wrk(done.stdout)
    if result.bad_responses:
        raise BenchError(f"{result.bad_responses} of {result.requests} responses were not 2xx; "
                         f"the load is not measuring the step:\n{done.stdout}")
    return result


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(report: str) -> LoadResult:
    """Requests/s, the 50th and 99th latency percentiles (in ms) and the error counts."""
    def number(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, report, re.MULTILINE)
        if match:
            return match.group(1)
        if default is None:
            raise BenchError(f"could not find {pattern!r} in wrk's output:\n{report}")
        return default

    def percentile_ms(percent: int) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", report, re.MULTILINE)
        if not match:
            raise BenchError(f"no {percent}% latency in wrk's output:\n{report}")
        return float(match.group(1)) * _UNIT_MS[match.group(2)]

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    return LoadResult(
        requests_per_s=float(number(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=percentile_ms(50),
        p99_ms=percentile_ms(99),
        requests=int(number(r"^\s+(\d+) requests in")),
        bad_responses=int(number(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


# -- the two modes ------------------------------------------------------------------------------


def measure(name: str, env: Mapping[str, str], step: Step, work_dir: Path) -> AppRun:
    """Serve one app under gunicorn, check it, warm it up, load it, and read its workers' CPU and RSS."""
    base_url = env["PUBLIC_BASE_URL"]
    log = work_dir / f"gunicorn-{name}.log"
    with gunicorn(APPS[name], env, log) as master:
        wait_for_tcp(int(env["PORT"]), master, f"gunicorn ({name})", log)
        wait_until_answering(base_url, master, log)
        if name == "ours":
            check_ours_accepts(base_url, step)
        else:
            status, _ = post_step(base_url, step)
            if status != 200:
                raise BenchError(f"the bare app answered HTTP {status}")
        script = wrk_script(step, work_dir / "wrk_post.lua")
        url = base_url + step.path_with_query
        run_wrk(url, script, WARMUP_DURATION_S)  # every worker booted and warm before we count
        run = load_once(master.pid, url, script)
        for _ in range(LOAD_ATTEMPTS - 1):
            if not run.is_uneven:
                break
            print(f"    uneven worker CPU split {run.cpu_split} ({run.load.requests_per_s:.0f} requests/s): "
                  f"the connections landed on one worker; running the load again", flush=True)
            run = load_once(master.pid, url, script)
    return run


def load_once(master_pid: int, url: str, script: Path) -> AppRun:
    """One counted wrk run, with the workers' CPU time around it and their RSS after it."""
    workers = worker_pids(master_pid)
    before = cpu_seconds(workers)
    result = run_wrk(url, script, WRK_DURATION_S)
    after = cpu_seconds(workers)
    spent = tuple(after[pid] - before[pid] for pid in before if pid in after)
    return AppRun(load=result, worker_cpu_s=spent, largest_rss_mb=largest_rss_mb(workers))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_report(results: dict[str, AppRun]) -> None:
    """The table, the ratio, the memory, and each target's PASS/FAIL."""
    print(f"\n{'app':<6}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'non-2xx':>9}"
          f"{'sock err':>9}{'CPU ms/req':>12}{'CPU split %':>13}{'max RSS MB':>12}")
    for name, run in results.items():
        load = run.load
        print(f"{name:<6}{load.requests_per_s:>12.1f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{load.requests:>10}"
              f"{load.bad_responses:>9}{load.socket_errors:>9}{run.cpu_ms_per_request:>12.2f}"
              f"{run.cpu_split:>13}{run.largest_rss_mb:>12.1f}")
    ours, ours_rss = results["ours"].load, results["ours"].largest_rss_mb
    bare = results["bare"].load
    ratio = ours.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
    print(f"\nratio ours/bare requests/s: {ratio:.2f}")
    ours_cpu = results["ours"].cpu_ms_per_request
    cpu_ratio = results["bare"].cpu_ms_per_request / ours_cpu if ours_cpu else 0.0
    print(f"ratio bare/ours worker CPU per request: {cpu_ratio:.2f} "
          f"(the requests/s ratio when the CPUs are the limit; steadier on a shared machine)")
    print(f"largest web worker RSS (ours): {ours_rss:.1f} MB")
    if results["ours"].is_uneven or results["bare"].is_uneven:
        print(f"WARNING: still an uneven worker split after {LOAD_ATTEMPTS} runs; requests/s understates that app.")
    if ours.socket_errors or bare.socket_errors:
        print("WARNING: wrk saw socket errors (see 'sock err'); the figures above are suspect.")
    print("(CPU ms/req: gunicorn worker CPU per request; CPU split: each worker's share, uneven when the\n"
          " kept-alive connections landed unevenly on the workers, which caps requests/s)")
    print(f"\n{'target':<38}{'measured':>12}  result")
    print(f"{f'requests/s ratio >= {TARGET_RATIO:.2f}':<38}{ratio:>12.2f}  {verdict(ratio >= TARGET_RATIO)}")
    print(f"{f'our p99 < {TARGET_P99_MS:.0f} ms at {WRK_CONNECTIONS} connections':<38}"
          f"{f'{ours.p99_ms:.2f} ms':>12}  {verdict(ours.p99_ms < TARGET_P99_MS)}")
    print(f"{f'web worker RSS < {TARGET_WORKER_MB:.0f} MB':<38}"
          f"{f'{ours_rss:.1f} MB':>12}  {verdict(ours_rss < TARGET_WORKER_MB)}")


def run_load(work_dir: Path, redis_port: int, credentials: dict[str, str]) -> None:
    """Both apps, one after the other, each on its own free port, with the same request."""
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (make bench installs it: apt-get install wrk)")
    print(f"POST {STEP_PATH} (Digits=2, signed, with a call-state token) under gunicorn -c {GUNICORN_CONFIG}, "
          f"{gunicorn_shape()}")
    print(f"load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_DURATION_S}s --latency "
          f"(after a {WARMUP_DURATION_S} s warm-up); {os.cpu_count()} CPUs shared by wrk and gunicorn")
    results = {}
    for name in APPS:
        port = free_port()
        env = app_environment(port, redis_port, work_dir, **credentials)
        step = build_step(env["PUBLIC_BASE_URL"], credentials["secret_key"], credentials["account_sid"],
                          credentials["auth_token"])
        print(f"  {name}: {APPS[name]} on port {port} ...", flush=True)
        results[name] = measure(name, env, step, work_dir)
    print_report(results)


def run_profile(work_dir: Path, redis_port: int, credentials: dict[str, str], requests: int) -> None:
    """The step in-process through Flask's test client, timed, then again under cProfile.

    The test client's own work (building the WSGI environ, reading the response) is in the
    figures too; gunicorn's is not.
    """
    from ivr import create_app

    env = app_environment(free_port(), redis_port, work_dir, **credentials)
    step = build_step(env["PUBLIC_BASE_URL"], credentials["secret_key"], credentials["account_sid"],
                      credentials["auth_token"])
    client = create_app(Settings.from_env(env)).test_client()
    headers = {"X-Twilio-Signature": step.signature}

    def send() -> None:
        client.post(step.path_with_query, data=step.form, headers=headers)

    first = client.post(step.path_with_query, data=step.form, headers=headers)
    if first.status_code != 200 or b"/voice/category?t=" not in first.data:
        raise BenchError(f"our app did not accept the signed step: HTTP {first.status_code}\n{first.data[:500]!r}")
    for _ in range(50):
        send()  # warm-up: first-use imports and caches

    started = time.perf_counter()
    for _ in range(requests):
        send()
    plain_us = (time.perf_counter() - started) / requests * 1e6

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        send()
    profiler.disable()
    print(f"POST {STEP_PATH} x {requests} through Flask's test client (in-process, one thread)")
    print(f"without the profiler: {plain_us:.0f} us per request ({1e6 / plain_us:.0f} requests/s on one core)")
    print_profile(profiler, requests)


def print_profile(profiler: cProfile.Profile, requests: int, top: int = 25, top_own: int = 12) -> None:
    """The top functions by cumulative time (which step costs what), then by own time (the leaves).

    Per request, with short file names. The profiler slows many small calls more than a
    few big ones, so the shares are a guide, not a measurement.
    """
    profile = pstats.Stats(profiler).get_stats_profile()
    total_s = profile.total_tt
    print(f"under the profiler: {total_s / requests * 1e6:.0f} us per request")
    by_cumulative = sorted(profile.func_profiles.items(), key=lambda item: item[1].cumtime, reverse=True)
    by_own = sorted(profile.func_profiles.items(), key=lambda item: item[1].tottime, reverse=True)
    for title, rows in ((f"top {top} by cumulative time", by_cumulative[:top]),
                        (f"top {top_own} by own time", by_own[:top_own])):
        print(f"\n{title}:\n{'calls/req':>10}{'own us':>9}{'cum us':>9}{'cum %':>7}  function")
        for name, func in rows:
            calls = int(str(func.ncalls).split("/")[0]) / requests
            print(f"{calls:>10.1f}{func.tottime / requests * 1e6:>9.1f}{func.cumtime / requests * 1e6:>9.1f}"
                  f"{func.cumtime / total_s * 100:>7.1f}  {short_location(func.file_name, func.line_number)}"
                  f"({name})")


def short_location(file_name: str, line: int) -> str:
    """A file name relative to site-packages, the stdlib or the project, for a readable table."""
    if file_name == "~":
        return ""
    for prefix in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"], str(PROJECT_ROOT)):
        if file_name.startswith(prefix + os.sep):
            return f"{file_name[len(prefix) + 1:]}:{line}"
    return f"{file_name}:{line}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile in-process requests instead of running wrk")
    parser.add_argument("--requests", type=int, default=2000, help="requests to profile (default 2000)")
    return parser.parse_args(argv)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into an exception so the `finally` blocks stop gunicorn and redis."""
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    credentials = {
        "secret_key": secrets.token_urlsafe(36),  # 48 characters
        "account_sid": "AC" + secrets.token_hex(16),
        "auth_token": secrets.token_hex(16),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="tipline-bench-") as temp, redis_server(Path(temp)) as redis_port:
            if args.profile:
                run_profile(Path(temp), redis_port, credentials, args.requests)
            else:
                run_load(Path(temp), redis_port, credentials)
    except BenchError as error:
        print(f"\nbenchmark could not run: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
