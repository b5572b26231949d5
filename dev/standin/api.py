"""The provider stand-in's Twilio routes: recordings, call logs and message logs.

Shapes follow Twilio's 2010-04-01 API as twilio-python reads them: a list page holds the
records under "recordings" (or "messages", "calls") next to the paging keys (start, end, page, page_size, uri,
first_page_uri, previous_page_uri, next_page_uri), dates are RFC 2822 in GMT, and an
error is {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from dev.standin.state import (
    FINAL_CALL_STATUSES,
    FINAL_MESSAGE_STATUSES,
    StoredCall,
    StoredMessage,
    StoredRecording,
    current_state,
)

API_PREFIX = "/2010-04-01/Accounts"
RECORDING_RESOURCE = re.compile(r"(RE[0-9a-f]{32})\.(wav|json)")
CALL_RESOURCE = re.compile(r"(CA[0-9a-f]{32})\.json")
MESSAGE_RESOURCE = re.compile(r"((?:SM|MM)[0-9a-f]{32})\.json")
MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-f]{32}")
MEDIA_RESOURCE = re.compile(r"(ME[0-9a-f]{32})\.json")
# Twilio's error for deleting a call or message before it is complete. Its code is
# documented; the HTTP status that comes with it is not, so the client keys on the code.
STILL_IN_PROGRESS_CODE = 20009
STILL_IN_PROGRESS_STATUS = 409
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

api = Blueprint("standin_api", __name__, url_prefix=API_PREFIX)


def twilio_error(status: int, code: int, message: str) -> Response:
    response = jsonify(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}",
                       status=status)
    response.status_code = status
    return response


def not_found() -> Response:
    return twilio_error(404, 20404, f"The requested resource {request.path} was not found")


def _account_matches(account_sid: str) -> bool:
    return hmac.compare_digest(account_sid.encode(), current_app.config["STANDIN_ACCOUNT_SID"].encode())


@api.get("/<account_sid>/Recordings.json")
def list_recordings(account_sid: str) -> Response:
    if not _account_matches(account_sid):
        return not_found()
    try:
        page_size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))))
        page = max(0, int(request.args.get("Page", 0)))
        matching = [r for r in current_state().recordings_newest_first() if _passes_filters(r)]
    except ValueError:
        return twilio_error(400, 20001, "Invalid filter or paging parameter")
    filters = ("DateCreated", "DateCreated<", "DateCreated>", "CallSid")
    return _list_page("recordings", f"{API_PREFIX}/{account_sid}/Recordings.json", filters, page, page_size,
                      [_recording_json(r) for r in matching[page * page_size:(page + 1) * page_size]], len(matching))


def _list_page(key: str, uri: str, filter_names: tuple[str, ...], page: int, page_size: int, shown: list[dict],
               total: int) -> Response:
    """Twilio's list page: the records under `key`, next to the paging keys twilio-python follows."""
    start = page * page_size
    filters = {k: v for k, v in request.args.items() if k in filter_names}

    def page_uri(number: int) -> str:
        return f"{uri}?{urlencode({**filters, 'PageSize': page_size, 'Page': number})}"

    return jsonify({
        key: shown,
        "start": start,
        "end": start + max(0, len(shown) - 1),
        "page": page,
        "page_size": page_size,
        "uri": page_uri(page),
        "first_page_uri": page_uri(0),
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "next_page_uri": page_uri(page + 1) if start + page_size < total else None,
    })


def _passes_filters(recording: StoredRecording) -> bool:
    """Twilio's list filters: a day (DateCreated) or a bound (DateCreated< / DateCreated>)."""
    args = request.args
    if "CallSid" in args and recording.call_sid != args["CallSid"]:
        return False
    if "DateCreated" in args and recording.date_created.date() != _parse_date(args["DateCreated"]).date():
        return False
    if "DateCreated<" in args and not recording.date_created < _parse_date(args["DateCreated<"]):
        return False
    if "DateCreated>" in args and not recording.date_created > _parse_date(args["DateCreated>"]):
        return False
    return True


def _parse_date(text: str) -> datetime:
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError("not a date")


def _recording_json(recording: StoredRecording) -> dict:
    account_sid = current_app.config["STANDIN_ACCOUNT_SID"]
    uri = f"{API_PREFIX}/{account_sid}/Recordings/{recording.sid}.json"
    created = format_datetime(recording.date_created.astimezone(UTC))
    return {
        "account_sid": account_sid, "api_version": "2010-04-01", "call_sid": recording.call_sid,
        "conference_sid": None, "date_created": created, "date_updated": created, "start_time": created,
        "duration": str(recording.duration_seconds), "sid": recording.sid, "price": None, "price_unit": "USD",
        "status": recording.status, "channels": 1, "source": "RecordVerb", "error_code": None, "uri": uri,
        "encryption_details": None, "media_url": f"{request.host_url.rstrip('/')}{uri[:-len('.json')]}",
        "subresource_uris": {
            "add_on_results": uri.replace(".json", "/AddOnResults.json"),
            "transcriptions": uri.replace(".json", "/Transcriptions.json"),
        },
    }


@api.route("/<account_sid>/Recordings/<resource>", methods=["GET", "DELETE"])
def recording(account_sid: str, resource: str) -> Response:
    match = RECORDING_RESOURCE.fullmatch(resource)
    if not _account_matches(account_sid) or not match:
        return not_found()
    sid, extension = match.groups()
    stored = current_state().recording(sid)
    if request.method == "DELETE":
        if extension != "json" or not current_state().delete_recording(sid):
            return not_found()
        return Response(status=204)
    if stored is None:
        return not_found()
    if extension == "wav":
        return Response(stored.wav, mimetype="audio/x-wav")
    return jsonify(_recording_json(stored))


@api.delete("/<account_sid>/Calls/<resource>")
def delete_call(account_sid: str, resource: str) -> Response:
    match = CALL_RESOURCE.fullmatch(resource)
    if not _account_matches(account_sid) or not match:
        return not_found()
    status = current_state().call_status(match.group(1))
    if status is None:
        return not_found()
    if status not in FINAL_CALL_STATUSES:
        return twilio_error(STILL_IN_PROGRESS_STATUS, STILL_IN_PROGRESS_CODE,
                            "Cannot delete this resource before it is complete")
    current_state().delete_call(match.group(1))
    return Response(status=204)


@api.get("/<account_sid>/Calls.json")
def list_calls(account_sid: str) -> Response:
    """Twilio's call log, newest first; To, From, Status, StartTime(</>) and EndTime(</>)
    filter it (a call in progress has no end time, so an EndTime filter leaves it out)."""
    if not _account_matches(account_sid):
        return not_found()
    try:
        page_size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))))
        page = max(0, int(request.args.get("Page", 0)))
        matching = [c for c in current_state().calls_newest_first() if _call_passes_filters(c)]
    except ValueError:
        return twilio_error(400, 20001, "Invalid filter or paging parameter")
    filters = ("To", "From", "Status", "StartTime", "StartTime<", "StartTime>", "EndTime", "EndTime<", "EndTime>")
    return _list_page("calls", f"{API_PREFIX}/{account_sid}/Calls.json", filters, page, page_size,
                      [_call_json(c) for c in matching[page * page_size:(page + 1) * page_size]], len(matching))


def _call_passes_filters(call: StoredCall) -> bool:
    args = request.args
    if "To" in args and call.to_number != args["To"]:
        return False
    if "From" in args and call.from_number != args["From"]:
        return False
    if "Status" in args and call.status != args["Status"]:
        return False
    for name, moment in (("StartTime", call.start_time), ("EndTime", call.end_time)):
        bounds = [k for k in (name, f"{name}<", f"{name}>") if k in args]
        if bounds and moment is None:
            return False
        if name in args and moment.date() != _parse_date(args[name]).date():
            return False
        if f"{name}<" in args and not moment < _parse_date(args[f"{name}<"]):
            return False
        if f"{name}>" in args and not moment > _parse_date(args[f"{name}>"]):
            return False
    return True


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment.astimezone(UTC), usegmt=True) if moment else None


def _call_json(call: StoredCall) -> dict:
    """A call as Twilio's log shows it: with the caller's number in `from`, as Twilio keeps it."""
    account_sid = current_app.config["STANDIN_ACCOUNT_SID"]
    uri = f"{API_PREFIX}/{account_sid}/Calls/{call.sid}.json"
    duration = int((call.end_time - call.start_time).total_seconds()) if call.end_time else None
    return {
        "sid": call.sid, "account_sid": account_sid, "api_version": "2010-04-01", "parent_call_sid": None,
        "date_created": _rfc2822(call.start_time), "date_updated": _rfc2822(call.end_time or call.start_time),
        "to": call.to_number, "to_formatted": call.to_number, "from": call.from_number,
        "from_formatted": call.from_number, "phone_number_sid": "PN" + "0" * 32, "status": call.status,
        "start_time": _rfc2822(call.start_time), "end_time": _rfc2822(call.end_time),
        "duration": str(duration) if duration is not None else None, "price": None, "price_unit": "USD",
        "direction": call.direction, "answered_by": None, "forwarded_from": None, "group_sid": None,
        "caller_name": None, "queue_time": "0", "trunk_sid": None, "uri": uri,
        "subresource_uris": {"recordings": uri.replace(".json", "/Recordings.json"),
                             "notifications": uri.replace(".json", "/Notifications.json")},
    }


@api.get("/<account_sid>/Messages.json")
def list_messages(account_sid: str) -> Response:
    """Twilio's message log, newest first; DateSent, DateSent<, DateSent> (the stand-in sends
    at creation, so date_sent is date_created), To and From filter it."""
    if not _account_matches(account_sid):
        return not_found()
    try:
        page_size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))))
        page = max(0, int(request.args.get("Page", 0)))
        matching = [m for m in current_state().messages_newest_first() if _message_passes_filters(m)]
    except ValueError:
        return twilio_error(400, 20001, "Invalid filter or paging parameter")
    return _list_page("messages", f"{API_PREFIX}/{account_sid}/Messages.json", ("DateSent", "DateSent<", "DateSent>"),
                      page, page_size,
                      [_message_json(m) for m in matching[page * page_size:(page + 1) * page_size]], len(matching))


def _message_passes_filters(message: StoredMessage) -> bool:
    args, sent = request.args, message.date_created
    if "DateSent" in args and sent.date() != _parse_date(args["DateSent"]).date():
        return False
    if "DateSent<" in args and not sent < _parse_date(args["DateSent<"]):
        return False
    if "DateSent>" in args and not sent > _parse_date(args["DateSent>"]):
        return False
    return True


def _message_json(message: StoredMessage) -> dict:
    account_sid = current_app.config["STANDIN_ACCOUNT_SID"]
    uri = f"{API_PREFIX}/{account_sid}/Messages/{message.sid}.json"
    created = format_datetime(message.date_created.astimezone(UTC), usegmt=True)
    return {
        "account_sid": account_sid, "api_version": "2010-04-01", "sid": message.sid, "body": message.body,
        "direction": message.direction, "status": message.status, "date_created": created, "date_updated": created,
        "date_sent": created, "num_segments": "1", "num_media": str(len(message.media)), "error_code": None,
        "error_message": None,
        "price": None, "price_unit": "USD", "messaging_service_sid": None, "uri": uri,
        # As Twilio's log: an inbound text holds the sender's number in `from`.
        "from": message.from_number, "to": None,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json"),
                             "feedback": uri.replace(".json", "/Feedback.json")},
    }


@api.route("/<account_sid>/Messages/<resource>", methods=["DELETE", "POST"])
def message(account_sid: str, resource: str) -> Response:
    match = MESSAGE_RESOURCE.fullmatch(resource)
    if not _account_matches(account_sid) or not match:
        return not_found()
    sid = match.group(1)
    stored = current_state().message(sid)
    if stored is None:
        return not_found()
    if request.method == "POST":
        if request.form.get("Body", None) != "":
            return twilio_error(400, 21220, "A message's Body can only be redacted (set to an empty string)")
        current_state().redact_message(sid)
        return jsonify(sid=sid, account_sid=account_sid, body="", status=stored.status)
    if stored.status not in FINAL_MESSAGE_STATUSES:
        return twilio_error(STILL_IN_PROGRESS_STATUS, STILL_IN_PROGRESS_CODE,
                            "Cannot delete this resource before it is complete")
    current_state().delete_message(sid)
    return Response(status=204)


@api.get("/<account_sid>/Messages/<message_sid>/Media.json")
def list_media(account_sid: str, message_sid: str) -> Response:
    """An MMS's photos (one page holds them all: a message carries at most ten)."""
    stored = current_state().message(message_sid) if MESSAGE_SID.fullmatch(message_sid) else None
    if not _account_matches(account_sid) or stored is None:
        return not_found()
    uri = f"{API_PREFIX}/{account_sid}/Messages/{message_sid}/Media.json"
    shown = [{"sid": media_sid, "account_sid": account_sid, "parent_sid": message_sid, "content_type": "image/jpeg",
              "uri": uri.replace("Media.json", f"Media/{media_sid}.json")} for media_sid in stored.media]
    return _list_page("media_list", uri, (), 0, MAX_PAGE_SIZE, shown, len(shown))


@api.delete("/<account_sid>/Messages/<message_sid>/Media/<resource>")
def delete_media(account_sid: str, message_sid: str, resource: str) -> Response:
    match = MEDIA_RESOURCE.fullmatch(resource)
    if not _account_matches(account_sid) or not match or not current_state().delete_media(message_sid, match.group(1)):
        return not_found()
    return Response(status=204)
