"""The SMS webhook: `POST /sms/incoming`, answered with TwiML (twilio's MessagingResponse).

The edge has already checked the signature and turned the sender's number into session
keys; this module sees only `InboundMessage`. Once a text is accepted, the tipster gets a
sentence even when something fails on our side, never an error page.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import HTTPException

from ivr.edge import InboundMessage, twilio_webhook
from ivr.sms.wiring import sms_door

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger(__name__)


def _twiml(reply: str) -> Response:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), mimetype="text/xml")


@bp.errorhandler(Exception)
def _failure(error: Exception) -> Response | HTTPException:
    if isinstance(error, HTTPException) and error.code is not None and error.code < 500:
        return error  # a 405 or 413 stays what it is
    log.exception("sms webhook failed")
    return _twiml(sms_door().menus.sms_text(None, "failure"))


@bp.post("/incoming")
@twilio_webhook(InboundMessage)
def incoming(message: InboundMessage) -> Response:
    return _twiml(sms_door().sms.receive(message, time.time()))
