"""Tipline's web app: the edge, the voice and SMS lines, and the handlers' console."""

from __future__ import annotations

from flask import Flask

from config.settings import Settings
from ivr.services import build_services

# Twilio's webhook bodies are a few kilobytes; an SMS is at most 1,600 characters.
MAX_WEBHOOK_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app. Nothing here connects to Redis: the app starts while Redis is away."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_WEBHOOK_BYTES,
        TIPLINE_SETTINGS=settings,
    )
    app.extensions["tipline"] = build_services(settings)

    from ivr import edge, health
    from ivr.console import web as console
    from ivr.sms import routes as sms
    from ivr.voice import routes as voice

    edge.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(sms.bp)
    console.install(app, app.extensions["tipline"])  # last: it exempts the webhooks above from CSRF
    return app
