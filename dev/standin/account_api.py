"""The provider stand-in's account-wide voice settings: a SIP trunk's recording setting
(trunking v1: GET /v1/Trunks/{TrunkSid}/Recording) and the Voice Intelligence services
(intelligence v2: GET /v2/Services, a list page with `meta` as Twilio's). Twilio serves
them on their own hosts; `ivr.core.provider.rest_client` points those at the stand-in.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request

from dev.standin.api import not_found
from dev.standin.numbers_api import meta_page
from dev.standin.state import StoredIntelligenceService, current_state

TRUNKS_PREFIX = "/v1/Trunks"
INTELLIGENCE_PREFIX = "/v2/Services"
TRUNK_SID = re.compile(r"TK[0-9a-f]{32}")
# Twilio's trunk recording modes and trims.
RECORDING_MODES = ("do-not-record", "record-from-ringing", "record-from-answer", "record-from-ringing-dual",
                   "record-from-answer-dual")
RECORDING_TRIMS = ("trim-silence", "do-not-trim")

account_api = Blueprint("standin_account", __name__)


@account_api.get(f"{TRUNKS_PREFIX}/<trunk_sid>/Recording")
def trunk_recording(trunk_sid: str) -> Response:
    recording = current_state().trunk_recording(trunk_sid) if TRUNK_SID.fullmatch(trunk_sid) else None
    return jsonify(recording) if recording else not_found()


@account_api.get(INTELLIGENCE_PREFIX)
def list_intelligence_services() -> Response:
    services = current_state().intelligence_services_in_order()
    return meta_page("services", INTELLIGENCE_PREFIX, [_service_json(s) for s in services])


def _service_json(service: StoredIntelligenceService) -> dict:
    return {"sid": service.sid, "account_sid": current_app.config["STANDIN_ACCOUNT_SID"],
            "unique_name": service.unique_name, "friendly_name": service.unique_name, "language_code": "en-GB",
            "auto_transcribe": service.auto_transcribe, "data_logging": service.data_logging,
            "auto_redaction": False, "media_redaction": False, "webhook_url": "", "webhook_http_method": "POST",
            "read_only_attached_operator_sids": [], "version": 1, "encryption_credential_sid": None,
            "date_created": "2026-01-01T00:00:00Z", "date_updated": "2026-01-01T00:00:00Z",
            "url": f"{request.host_url.rstrip('/')}{INTELLIGENCE_PREFIX}/{service.sid}"}
