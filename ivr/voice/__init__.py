"""The voice line: Twilio's voice webhooks, answered in TwiML."""

from flask import Blueprint

bp = Blueprint("voice", __name__, url_prefix="/voice")

from ivr.voice import routes  # noqa: E402,F401  (registers the routes on bp)
