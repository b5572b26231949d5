"""The provider stand-in's phone-number routes: the account's IncomingPhoneNumbers (list,
update) and the Messaging Services whose sender pools hold them (list, and their numbers).

The numbers are the line's own, never a caller's. Fields are Twilio's: form names in
CamelCase on update (VoiceUrl=...), snake_case in the JSON (voice_url), unset URLs "",
booleans "true"/"false" on the form and true/false in the JSON.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request

from dev.standin.api import API_PREFIX, _account_matches, _list_page, not_found, twilio_error
from dev.standin.state import StoredMessagingService, StoredNumber, current_state

NUMBER_RESOURCE = re.compile(r"(PN[0-9a-f]{32})\.json")
SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")
# What an update may set, as Twilio names it on the form and in the JSON.
URL_FIELDS = ("voice_url", "voice_fallback_url", "sms_url", "sms_fallback_url", "status_callback")
METHOD_FIELDS = ("voice_method", "voice_fallback_method", "sms_method", "sms_fallback_method",
                 "status_callback_method")
OTHER_FIELDS = ("friendly_name", "voice_application_sid", "sms_application_sid", "trunk_sid")
BOOLEAN_FIELDS = ("voice_caller_id_lookup",)
UPDATABLE = URL_FIELDS + METHOD_FIELDS + OTHER_FIELDS + BOOLEAN_FIELDS
MESSAGING_PREFIX = "/v1/Services"

numbers_api = Blueprint("standin_numbers", __name__)


def form_name(field_name: str) -> str:
    """voice_fallback_url -> VoiceFallbackUrl (Twilio's form parameter)."""
    return "".join(part.capitalize() for part in field_name.split("_"))


def number_defaults() -> dict[str, str | bool | None]:
    """A number as Twilio leaves it after purchase: no URLs, every method POST."""
    return {**dict.fromkeys(URL_FIELDS, ""), **dict.fromkeys(METHOD_FIELDS, "POST"),
            "friendly_name": None, "voice_application_sid": None, "sms_application_sid": "", "trunk_sid": None,
            "voice_caller_id_lookup": False}


@numbers_api.get(f"{API_PREFIX}/<account_sid>/IncomingPhoneNumbers.json")
def list_numbers(account_sid: str) -> Response:
    """The account's numbers; PhoneNumber= filters by the number (digits contained, as Twilio's partial match)."""
    if not _account_matches(account_sid):
        return not_found()
    wanted = "".join(ch for ch in request.args.get("PhoneNumber", "") if ch.isdigit())
    matching = [n for n in current_state().numbers_in_order() if wanted in n.phone_number]
    return _list_page("incoming_phone_numbers", f"{API_PREFIX}/{account_sid}/IncomingPhoneNumbers.json",
                      ("PhoneNumber",), 0, max(1, len(matching)), [_number_json(n) for n in matching],
                      len(matching))


@numbers_api.route(f"{API_PREFIX}/<account_sid>/IncomingPhoneNumbers/<resource>", methods=["GET", "POST"])
def number(account_sid: str, resource: str) -> Response:
    match = NUMBER_RESOURCE.fullmatch(resource)
    if not _account_matches(account_sid) or not match:
        return not_found()
    if request.method == "GET":
        stored = current_state().number(match.group(1))
        return jsonify(_number_json(stored)) if stored else not_found()
    changes: dict[str, str | bool | None] = {}
    for name in UPDATABLE:
        if form_name(name) in request.form:
            value = request.form[form_name(name)]
            if name in METHOD_FIELDS and value.upper() not in ("GET", "POST"):
                return twilio_error(400, 21201, f"{form_name(name)} must be GET or POST")
            if name in URL_FIELDS and value and not value.startswith(("http://", "https://")):
                return twilio_error(400, 21201, f"{form_name(name)} is not a valid URL")
            if name in BOOLEAN_FIELDS and value.lower() not in ("true", "false"):
                return twilio_error(400, 21201, f"{form_name(name)} must be true or false")
            if name in METHOD_FIELDS:
                changes[name] = value.upper()
            elif name in BOOLEAN_FIELDS:
                changes[name] = value.lower() == "true"
            else:
                changes[name] = value
    stored = current_state().update_number(match.group(1), changes)
    return jsonify(_number_json(stored)) if stored else not_found()


def _number_json(stored: StoredNumber) -> dict:
    account_sid = current_app.config["STANDIN_ACCOUNT_SID"]
    return {**number_defaults(), "friendly_name": stored.phone_number, **stored.fields,
            "sid": stored.sid, "account_sid": account_sid, "phone_number": stored.phone_number,
            "api_version": "2010-04-01", "status": "in-use",
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
            "uri": f"{API_PREFIX}/{account_sid}/IncomingPhoneNumbers/{stored.sid}.json"}


@numbers_api.get(MESSAGING_PREFIX)
def list_services() -> Response:
    services = current_state().messaging_services_in_order()
    return meta_page("services", MESSAGING_PREFIX, [_service_json(s) for s in services])


@numbers_api.get(f"{MESSAGING_PREFIX}/<service_sid>/PhoneNumbers")
def list_service_numbers(service_sid: str) -> Response:
    service = next((s for s in current_state().messaging_services_in_order() if s.sid == service_sid), None)
    if service is None or not SERVICE_SID.fullmatch(service_sid):
        return not_found()
    account_sid = current_app.config["STANDIN_ACCOUNT_SID"]
    pool = [current_state().number(sid) for sid in service.number_sids]
    return meta_page("phone_numbers", f"{MESSAGING_PREFIX}/{service_sid}/PhoneNumbers", [
        {"sid": n.sid, "account_sid": account_sid, "service_sid": service_sid, "phone_number": n.phone_number,
         "country_code": "GB", "capabilities": ["SMS", "Voice"]} for n in pool if n is not None])


def _service_json(service: StoredMessagingService) -> dict:
    return {"sid": service.sid, "account_sid": current_app.config["STANDIN_ACCOUNT_SID"],
            "friendly_name": service.friendly_name, "status_callback": service.status_callback,
            "inbound_request_url": None, "inbound_method": "POST", "use_inbound_webhook_on_number": False}


def meta_page(key: str, path: str, shown: list[dict]) -> Response:
    """A v1/v2 list page (one page holds everything the stand-in has): the records under `key`, paging in `meta`."""
    url = f"{request.host_url.rstrip('/')}{path}?PageSize=50&Page=0"
    return jsonify({key: shown, "meta": {"key": key, "page": 0, "page_size": 50, "first_page_url": url, "url": url,
                                         "previous_page_url": None, "next_page_url": None}})
