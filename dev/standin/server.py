"""A local stand-in for the slice of Twilio's REST API Tipline uses, on a loopback port.

API routes (HTTP basic auth with the account sid and auth token, as Twilio requires),
under /2010-04-01/Accounts/{AccountSid}/:
  GET Recordings/{sid}.wav, GET Recordings/{sid}.json, DELETE Recordings/{sid}.json,
  GET Recordings.json (Twilio's list page; DateCreated, DateCreated<, DateCreated>, CallSid,
  PageSize and Page), GET Calls.json (Twilio's list page; To, From, Status, StartTime and
  EndTime with < and >, PageSize and Page; `from` holds the caller's number, as Twilio's log
  does), DELETE Calls/{sid}.json (error 20009 until the call has a final status),
  GET Messages.json (Twilio's list page; DateSent, DateSent<, DateSent>, PageSize and Page),
  DELETE Messages/{sid}.json (20009 until the message is final), POST Messages/{sid}.json
  with Body= (redaction), GET IncomingPhoneNumbers.json (PhoneNumber=), GET and POST
  IncomingPhoneNumbers/{sid}.json (update: VoiceUrl, SmsUrl, StatusCallback, ... as Twilio
  names them; VoiceCallerIdLookup=true|false, a boolean in the JSON). Messaging (v1):
  GET /v1/Services, GET /v1/Services/{sid}/PhoneNumbers. Trunking (v1): GET
  /v1/Trunks/{sid}/Recording (mode, trim). Voice Intelligence (v2): GET /v2/Services.
  Errors are Twilio's JSON: {"code", "message", "more_info", "status"}.

Admin routes under /_standin/ (no auth, loopback clients only) put recordings, start and
end calls, read the request log, inject faults and hold requests: `dev.standin.client`.

In tests: `StandInServer(account_sid, auth_token).start()` serves it from a thread. As a
process (`make run`): `python -m dev.standin`, on the port of TWILIO_API_BASE.
It never logs a request line: the paths carry provider sids.
"""

from __future__ import annotations

import hmac
import signal
import struct
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from config.settings import Settings, SettingsError
from dev.standin.account_api import INTELLIGENCE_PREFIX, TRUNKS_PREFIX, account_api
from dev.standin.admin import ADMIN_PREFIX, admin
from dev.standin.api import API_PREFIX, api, not_found, twilio_error
from dev.standin.numbers_api import MESSAGING_PREFIX, numbers_api
from dev.standin.state import Fault, ProviderState, current_state

STREAM_CHUNK = 64 * 1024
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def create_standin_app(account_sid: str, auth_token: str, state: ProviderState | None = None) -> Flask:
    """The stand-in as a Flask app, for the given account's credentials."""
    app = Flask(__name__)
    app.config.update(STANDIN_ACCOUNT_SID=account_sid, STANDIN_AUTH_TOKEN=auth_token,
                      MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    app.extensions["standin"] = state or ProviderState()
    app.register_blueprint(api)
    app.register_blueprint(admin)
    app.register_blueprint(numbers_api)
    app.register_blueprint(account_api)
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _is_api() -> bool:
    return request.path.startswith((API_PREFIX + "/", MESSAGING_PREFIX, TRUNKS_PREFIX, INTELLIGENCE_PREFIX))


# -- what every request goes through ------------------------------------------------------

def _before() -> Response | None:
    if request.path.startswith(ADMIN_PREFIX + "/"):
        if request.remote_addr not in LOOPBACK:
            return Response("The stand-in's admin routes answer loopback clients only.\n", 403)
        return None
    if not _authorised():
        response = twilio_error(401, 20003, "Authenticate")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    current_state().wait_if_held(request.method, request.path, after=False)
    fault = current_state().take_fault(request.method, request.path)
    return _faulty_answer(fault) if fault else None


def _after(response: Response) -> Response:
    state = current_state()
    if _is_api():
        state.note(request.method, request.path, request.query_string.decode(), response.status_code)
        state.wait_if_held(request.method, request.path, after=True)
    elif request.method == "POST" and request.path.startswith(ADMIN_PREFIX + "/") and response.status_code < 300:
        state.note("ADMIN", request.path, request.query_string.decode(), response.status_code)
    return response


def _http_error(error: HTTPException) -> Response:
    if not _is_api():
        return error
    if error.code == 404:
        return not_found()
    return twilio_error(error.code or 500, 20001 if (error.code or 500) < 500 else 20500, error.name)


def _authorised() -> bool:
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return False
    sid_ok = hmac.compare_digest((credentials.username or "").encode(),
                                 current_app.config["STANDIN_ACCOUNT_SID"].encode())
    token_ok = hmac.compare_digest((credentials.password or "").encode(),
                                   current_app.config["STANDIN_AUTH_TOKEN"].encode())
    return sid_ok and token_ok


def _faulty_answer(fault: Fault) -> Response:
    if fault.location:
        response = Response(status=fault.status if 300 <= fault.status < 400 else 302)
        response.headers["Location"] = fault.location
        return response
    if fault.stream_bytes:
        response = Response(_wav_stream(fault.stream_bytes), status=fault.status,
                            content_type=fault.content_type or "audio/x-wav")
        if fault.declare_length:
            response.headers["Content-Length"] = str(fault.stream_bytes)
        return response
    if fault.body or fault.content_type:
        return Response(fault.body, status=fault.status, content_type=fault.content_type or "application/octet-stream")
    return twilio_error(fault.status, fault.code or (20500 if fault.status >= 500 else 20001),
                        "Injected by the stand-in")


def _wav_stream(total: int) -> Iterator[bytes]:
    """A WAV header and silence, `total` bytes in all, in chunks."""
    header = b"RIFF" + struct.pack("<I", total - 8) + b"WAVE"
    yield header[:total]
    sent = len(header)
    while sent < total:
        chunk = min(STREAM_CHUNK, total - sent)
        yield bytes(chunk)
        sent += chunk


# -- serving ------------------------------------------------------------------------------

class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log: request paths carry provider sids."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class StandInServer:
    """The stand-in served from a background thread on a loopback port (0: any free one)."""

    def __init__(self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = ProviderState()
        self.app = create_standin_app(account_sid, auth_token, self.state)
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True,
                                                   request_handler=QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="provider-standin", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.server_port}"

    def start(self) -> StandInServer:
        self._thread.start()
        return self

    def serve_here(self) -> None:
        """Serve in this thread until interrupted (the process form)."""
        try:
            self._server.serve_forever()
        finally:
            self.state.stop()
            self._server.server_close()

    def stop(self) -> None:
        self.state.stop()  # lets held requests go, so their threads finish
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def loopback_port(api_base: str) -> int:
    """The port of TWILIO_API_BASE, which must be http on 127.0.0.1 for the stand-in to serve it."""
    parts = urlsplit(api_base)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise ValueError(f"TWILIO_API_BASE must be http://127.0.0.1:PORT for the stand-in, not {api_base!r}.")
    return parts.port


def main() -> int:
    try:
        settings = Settings.from_env()
        port = loopback_port(settings.twilio_api_base)
    except (SettingsError, ValueError) as error:
        print(f"The provider stand-in cannot start: {error}", file=sys.stderr)
        return 2
    server = StandInServer(settings.twilio_account_sid, settings.twilio_auth_token, port=port)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # honcho stops processes with SIGTERM
    print(f"Provider stand-in (Twilio's REST API, for development) at {server.url}", flush=True)
    try:
        server.serve_here()
    except KeyboardInterrupt:
        return 0  # Ctrl-C in a terminal reaches every process; honcho stops the rest
    return 0

