"""The app behind real nginx, from deploy/nginx/tipline.conf: TLS ends there, signed webhooks
pass, forged forwarding headers change nothing, and nginx's log keeps no token or number.

nginx runs from its own configuration and prefix under tmp, on a free loopback port (never
the system service, never port 80), with a self-signed certificate; gunicorn serves the app
with PUBLIC_BASE_URL=https://127.0.0.1:<nginx port> and CONSOLE_TRUSTED_PROXIES=1. A
second nginx, with no gunicorn behind it, shows that an upstream failure (which nginx
logs at "error" with the whole request line) leaves no token in any of its logs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

from config.settings import PROJECT_ROOT
from dev.processes import free_port, process_environment, start, wait_for_health
from dev.standin.client import StandIn
from dev.twilio.calls import Transport, TwilioLike
from ivr.core.sign_in_limits import ADDRESS_FAILURES_ALLOWED
from ivr.voice.script import TOKEN_PARAMETER
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER, STANDIN_ACCOUNT_SID, STANDIN_AUTH_TOKEN, environment_for
from tests.console_people import CSRF_META
from tests.privacy import needles_for_number, scan_lines

pytestmark = pytest.mark.slow

SITE = PROJECT_ROOT / "deploy" / "nginx" / "tipline.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FORGED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-For": "1.2.3.4",
          "X-Forwarded-Port": "8443", "Forwarded": "for=1.2.3.4;host=evil.example;proto=http"}


@dataclass(frozen=True)
class Site:
    url: str  # https://127.0.0.1:<nginx port>
    certificate: Path
    access_log: Path
    error_log: Path
    auth_token: str
    account_sid: str


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True, timeout=30)
    return certificate, key


def replaced(text: str, old: str, new: str) -> str:
    """`text` with its one `old` replaced: a site file that has drifted fails here, by name."""
    assert text.count(old) == 1, f"{SITE.name} should hold {old!r} exactly once"
    return text.replace(old, new)


def render_site(prefix: Path, port: int, upstream_port: int, certificate: Path, key: Path) -> Path:
    """The site file as an install has it, moved onto loopback ports and into `prefix`."""
    site = SITE.read_text()
    site = replaced(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    site = replaced(site, "listen [::]:443 ssl http2;", "")
    site = replaced(site, "server_name hotline.example.org;", "server_name 127.0.0.1;")
    site = replaced(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    site = replaced(site, "/etc/letsencrypt/live/hotline.example.org/fullchain.pem", str(certificate))
    site = replaced(site, "/etc/letsencrypt/live/hotline.example.org/privkey.pem", str(key))
    site = site.replace("/var/log/nginx/", f"{prefix}/logs/")
    directives = [line.split("#")[0] for line in site.splitlines()]
    assert not any("/var/" in line or "/etc/" in line for line in directives), "a path outside the prefix"
    (prefix / "tipline.conf").write_text(site)
    temp = prefix / "temp"
    # As root, nginx's workers would run as nobody, who cannot enter pytest's 0700 tmp folders.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    access_log {prefix}/logs/default-access.log;
    include {prefix}/tipline.conf;
}}
""")
    return conf


def wait_for_nginx(url: str, certificate: Path, nginx: subprocess.Popen, log: Path, timeout: float = 10,
                   ready_status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert nginx.poll() is None, f"nginx exited: {log.read_text()}"
        try:
            if requests.get(f"{url}/healthz", verify=certificate, timeout=2).status_code == ready_status:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nginx never answered on {url}")


def nginx_prefix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A fresh prefix with logs/ and temp/, and a self-signed certificate and key in it."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed: run `make system-packages-test`")
    prefix = tmp_path_factory.mktemp("nginx")
    for folder in ("logs", "temp"):
        (prefix / folder).mkdir()
    return (prefix, *self_signed_certificate(prefix))


def start_nginx(prefix: Path, conf: Path, env: dict[str, str]) -> subprocess.Popen:
    """nginx from `conf` (checked with -t first), in the foreground, logging under `prefix`."""
    checked = subprocess.run([NGINX, "-t", "-p", str(prefix), "-e", str(prefix / "logs" / "startup.log"),
                              "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    return start([NGINX, "-p", str(prefix), "-e", str(prefix / "logs" / "startup.log"), "-c", str(conf)], env,
                 prefix / "nginx-stdout.log")


@pytest.fixture(scope="module")
def site(redis_server, tmp_path_factory) -> Iterator[Site]:
    prefix, certificate, key = nginx_prefix(tmp_path_factory)
    port, upstream_port = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    env = process_environment({**environment_for(redis_server.url, tmp_path_factory.mktemp("var")),
                               "PORT": str(upstream_port), "PUBLIC_BASE_URL": url,
                               "CONSOLE_TRUSTED_PROXIES": "1", "WEB_CONCURRENCY": "1", "WEB_THREADS": "4",
                               "LOG_LEVEL": "WARNING"})
    conf = render_site(prefix, port, upstream_port, certificate, key)
    gunicorn_log, nginx_log = prefix / "gunicorn.log", prefix / "nginx-stdout.log"
    gunicorn = start([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "ivr.wsgi:app"], env,
                     gunicorn_log)
    nginx = start_nginx(prefix, conf, env)
    try:
        wait_for_health(f"http://127.0.0.1:{upstream_port}", timeout=20)
        wait_for_nginx(url, certificate, nginx, nginx_log)
        yield Site(url, certificate, prefix / "logs" / "tipline-access.log", prefix / "logs" / "tipline-error.log",
                   env["TWILIO_AUTH_TOKEN"], env["TWILIO_ACCOUNT_SID"])
    finally:
        nginx.terminate()
        gunicorn.terminate()
        nginx.wait(timeout=10)
        gunicorn.wait(timeout=20)


@pytest.fixture(scope="module")
def site_without_app(tmp_path_factory) -> Iterator[Site]:
    """nginx from the same site file with gunicorn down: its upstream port has no listener."""
    prefix, certificate, key = nginx_prefix(tmp_path_factory)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    conf = render_site(prefix, port, free_port(), certificate, key)
    nginx = start_nginx(prefix, conf, process_environment({}))
    try:
        wait_for_nginx(url, certificate, nginx, prefix / "nginx-stdout.log", ready_status=502)
        yield Site(url, certificate, prefix / "logs" / "tipline-access.log", prefix / "logs" / "tipline-error.log",
                   STANDIN_AUTH_TOKEN, STANDIN_ACCOUNT_SID)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def https_transport(site: Site, extra_headers: dict[str, str] | None = None) -> Transport:
    """POSTs as Twilio does, over TLS to nginx, trusting the test's own certificate."""
    def post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        response = requests.post(url, data=form, headers={**headers, **(extra_headers or {})},
                                 verify=site.certificate, timeout=15, allow_redirects=False)
        return response.status_code, response.text
    return post


def test_a_whole_call_through_nginx_passes_and_its_log_keeps_no_token_or_number(site: Site,
                                                                                 standin: StandIn) -> None:
    twilio = TwilioLike(https_transport(site), site.url, site.account_sid, site.auth_token, provider=standin)
    call = twilio.call(CALLER_NUMBER)
    reference, pin = leave_a_message(call, "1", "1")
    assert [(urlsplit(w.url).path, w.status) for w in twilio.requests if w.status not in (200, 204)] == []

    answer = requests.get(f"{site.url}/healthz", verify=site.certificate, timeout=5)
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "nginx/" not in answer.headers.get("Server", "")

    tokens = {value for webhook in twilio.requests for _, value in parse_qsl(urlsplit(webhook.url).query)}
    assert tokens, "the call's webhooks carried a call-state token in their query"
    log = site.access_log.read_text().splitlines()
    assert any("/voice/" in line for line in log), "nginx logged the webhooks"
    assert not any("?" in line for line in log)
    sids = {call.sid} | {r.form["RecordingSid"] for r in call.recordings}
    assert scan_lines(log, tokens | sids | {reference, pin} | needles_for_number(CALLER_NUMBER)) == []


def test_forged_forwarding_headers_change_nothing_for_webhooks(site: Site) -> None:
    form = {"CallSid": "CA" + "0" * 32, "From": CALLER_NUMBER, "CallStatus": "ringing"}
    forged = TwilioLike(https_transport(site, FORGED), site.url, site.account_sid, site.auth_token)
    # Signed for the real URL (PUBLIC_BASE_URL): passes, whatever the headers claim.
    assert forged.post("/voice/incoming", form).status == 200
    # Signed for the URL the forged headers describe: refused.
    validator = RequestValidator(site.auth_token)
    port = urlsplit(site.url).port
    for claimed in ("https://evil.example/voice/incoming", f"http://127.0.0.1:{port}/voice/incoming",
                    "https://evil.example:8443/voice/incoming"):
        webhook = forged.post("/voice/incoming", form, signature=validator.compute_signature(claimed, form))
        assert webhook.status == 403, claimed


def test_the_sign_in_limiter_counts_the_real_address_not_a_forged_one(site: Site) -> None:
    browser = requests.Session()
    page = browser.get(f"{site.url}/console/login", verify=site.certificate, timeout=10)
    csrf = CSRF_META.search(page.text).group(1)
    answers = []
    for attempt in range(ADDRESS_FAILURES_ALLOWED + 1):
        # Each attempt claims another address; nginx replaces the claim with 127.0.0.1.
        response = browser.post(f"{site.url}/console/login", verify=site.certificate, timeout=30,
                                allow_redirects=False,
                                headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}",
                                         "Referer": f"{site.url}/console/login"},
                                data={"csrf_token": csrf, "name": "nobody", "password": "wrong password",
                                      "code": "000000"})
        answers.append(response.status_code)
    assert answers == [401] * ADDRESS_FAILURES_ALLOWED + [429]



def test_with_the_app_down_a_webhook_gets_502_and_no_nginx_log_keeps_its_token(site_without_app: Site) -> None:
    # Given gunicorn is down, When Twilio posts a signed webhook whose query carries a call-state token
    token = secrets.token_urlsafe(48)
    twilio = TwilioLike(https_transport(site_without_app), site_without_app.url, site_without_app.account_sid,
                        site_without_app.auth_token)
    webhook = twilio.post(f"/voice/category?{TOKEN_PARAMETER}={token}",
                          {"CallSid": "CA" + "9" * 32, "From": CALLER_NUMBER, "Digits": "2"})

    # Then nginx answers 502 itself, and neither its error log nor its access log holds the token or the query
    assert webhook.status == 502
    logs = site_without_app.error_log.parent
    assert site_without_app.error_log.exists() and site_without_app.access_log.exists()
    assert any("/voice/category 502" in line for line in site_without_app.access_log.read_text().splitlines())
    lines = [line for log in sorted(logs.glob("*.log")) for line in log.read_text().splitlines()]
    assert scan_lines(lines, {token, f"{TOKEN_PARAMETER}={token}", "/voice/category?"}
                      | needles_for_number(CALLER_NUMBER)) == []
