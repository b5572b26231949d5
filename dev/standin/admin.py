"""The provider stand-in's admin routes, for tests and the simulator (`dev.standin.client`).

No authentication: the stand-in listens on loopback, and these answer loopback clients
only. Every POST here is also written to the request log, numbered in the same sequence
as the API requests, so a test can tell what happened before what.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from dev.standin.account_api import RECORDING_MODES, RECORDING_TRIMS
from dev.standin.numbers_api import number_defaults
from dev.standin.state import (
    FINAL_CALL_STATUS,
    FINAL_CALL_STATUSES,
    MESSAGE_DIRECTIONS,
    Fault,
    Hold,
    StoredIntelligenceService,
    StoredMessage,
    StoredMessagingService,
    StoredNumber,
    StoredRecording,
    current_state,
    utc_now,
)

ADMIN_PREFIX = "/_standin"

admin = Blueprint("standin_admin", __name__, url_prefix=ADMIN_PREFIX)


@admin.get("/health")
def health() -> Response:
    return jsonify(ok=True)


@admin.post("/reset")
def reset() -> Response:
    current_state().reset()
    return jsonify(ok=True)


@admin.post("/recordings")
def put_recording() -> Response:
    args = request.args
    created = datetime.fromisoformat(args["date_created"]) if args.get("date_created") else utc_now()
    if created.tzinfo is None:
        return Response("date_created must carry a UTC offset.\n", 400)
    current_state().put_recording(StoredRecording(
        sid=args["sid"], call_sid=args.get("call_sid") or None, wav=request.get_data(),
        duration_seconds=int(args["duration_seconds"]), date_created=created.astimezone(UTC),
        status=args.get("status", "completed")))
    return jsonify(ok=True)


@admin.get("/recordings")
def list_stored_recordings() -> Response:
    return jsonify(recordings=[r.summary() for r in current_state().recordings_newest_first()])


@admin.get("/recordings/<sid>.wav")
def stored_audio(sid: str) -> Response:
    stored = current_state().recording(sid)
    return Response(stored.wav, mimetype="audio/x-wav") if stored else Response(status=404)


@admin.post("/calls/<sid>/<event>")
def call_event(sid: str, event: str) -> Response:
    """A call starts (`from`, `to`: the numbers its log holds) or ends (`status`, a final
    one, default completed; `end_time` with a UTC offset backdates the end)."""
    args = request.args
    statuses = {"started": "in-progress", "ended": args.get("status", FINAL_CALL_STATUS)}
    if event not in statuses:
        return Response("A call can be started or ended.\n", 404)
    if event == "ended" and statuses[event] not in FINAL_CALL_STATUSES:
        return Response(f"An ended call's status is one of {sorted(FINAL_CALL_STATUSES)}.\n", 400)
    end_time = datetime.fromisoformat(args["end_time"]) if args.get("end_time") else None
    if end_time is not None and end_time.tzinfo is None:
        return Response("end_time must carry a UTC offset.\n", 400)
    current_state().set_call(sid, statuses[event], end_time=end_time.astimezone(UTC) if end_time else None,
                             from_number=args.get("from") or None, to_number=args.get("to") or None)
    return jsonify(ok=True)


@admin.get("/calls")
def calls() -> Response:
    return jsonify(calls=current_state().call_statuses())


@admin.post("/messages/<sid>")
def put_message(sid: str) -> Response:
    args = request.args
    created = datetime.fromisoformat(args["date_created"]) if args.get("date_created") else utc_now()
    direction = args.get("direction", "inbound")
    if created.tzinfo is None:
        return Response("date_created must carry a UTC offset.\n", 400)
    if direction not in MESSAGE_DIRECTIONS:
        return Response(f"direction must be one of {sorted(MESSAGE_DIRECTIONS)}.\n", 400)
    current_state().put_message(StoredMessage(
        sid=sid, body=request.get_data(as_text=True), status=args.get("status", "received"), direction=direction,
        date_created=created.astimezone(UTC), media=[m for m in args.get("media", "").split(",") if m],
        from_number=args.get("from") or None))
    return jsonify(ok=True)


@admin.get("/messages")
def messages() -> Response:
    return jsonify(messages=current_state().message_summaries())


@admin.get("/log")
def request_log() -> Response:
    return jsonify(log=current_state().log())


@admin.post("/faults")
def add_fault() -> Response:
    spec = request.get_json(force=True)
    current_state().add_fault(Fault(
        method=spec.get("method", "*").upper(), path=spec.get("path", ""), remaining=spec.get("times", 1),
        status=int(spec.get("status", 500)), code=spec.get("code"), content_type=spec.get("content_type"),
        body=base64.b64decode(spec.get("body", "")), stream_bytes=int(spec.get("stream_bytes", 0)),
        declare_length=bool(spec.get("declare_length", False)), location=spec.get("location")))
    return jsonify(ok=True)


@admin.post("/holds")
def add_hold() -> Response:
    spec = request.get_json(force=True)
    current_state().add_hold(Hold(method=spec.get("method", "*").upper(), path=spec.get("path", ""),
                           remaining=spec.get("times"), after=bool(spec.get("after", False))))
    return jsonify(ok=True)


@admin.get("/held")
def held() -> Response:
    return jsonify(held=current_state().held_count())


@admin.post("/release")
def release() -> Response:
    return jsonify(released=current_state().release())


@admin.post("/numbers/<sid>")
def put_number(sid: str) -> Response:
    """One of the account's numbers: `phone_number` in the query, its Twilio fields (snake_case) as JSON."""
    fields = request.get_json(force=True) or {}
    current_state().put_number(StoredNumber(sid=sid, phone_number=request.args["phone_number"], fields=fields))
    return jsonify(ok=True)


@admin.get("/numbers")
def numbers() -> Response:
    """Each number's fields as the API shows them, by phone number."""
    return jsonify(numbers={n.phone_number: {**number_defaults(), **n.fields, "sid": n.sid}
                            for n in current_state().numbers_in_order()})


@admin.post("/messaging-services/<sid>")
def put_messaging_service(sid: str) -> Response:
    spec = request.get_json(force=True) or {}
    current_state().put_messaging_service(StoredMessagingService(
        sid=sid, friendly_name=spec.get("friendly_name", "Messaging Service"),
        number_sids=list(spec.get("numbers", [])), status_callback=spec.get("status_callback")))
    return jsonify(ok=True)


@admin.post("/trunks/<sid>")
def put_trunk(sid: str) -> Response:
    """A SIP trunk's recording setting: `mode` and `trim` as Twilio names them (JSON)."""
    spec = request.get_json(force=True) or {}
    mode, trim = spec.get("mode", "do-not-record"), spec.get("trim", "do-not-trim")
    if mode not in RECORDING_MODES or trim not in RECORDING_TRIMS:
        return Response(f"mode is one of {RECORDING_MODES}, trim one of {RECORDING_TRIMS}.\n", 400)
    current_state().put_trunk(sid, mode, trim)
    return jsonify(ok=True)


@admin.post("/intelligence-services/<sid>")
def put_intelligence_service(sid: str) -> Response:
    spec = request.get_json(force=True) or {}
    current_state().put_intelligence_service(StoredIntelligenceService(
        sid=sid, unique_name=spec.get("unique_name", "service"), auto_transcribe=bool(spec.get("auto_transcribe")),
        data_logging=bool(spec.get("data_logging"))))
    return jsonify(ok=True)
