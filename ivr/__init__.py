"""Tipline's web app: the edge, the voice and SMS lines, and the handlers' console.

Flask is imported inside `create_app`, not here: `ivr/` is also the package of the core
(`ivr.core`), which the workers and the CLI import without loading the web app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from config.settings import Settings

# Twilio's webhook bodies are a few kilobytes; an SMS is at most 1,600 characters.
MAX_WEBHOOK_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app. Nothing here connects to Redis: the app starts while Redis is away."""
    from flask import Flask

    from config.settings import Settings
    from ivr import console, edge, health, metrics, sms, voice
    from ivr.core import build_core
    from ivr.current import CORE_EXTENSION

    core = build_core(settings or Settings.from_env())
    app = Flask(__name__)
    # The console's session cookie: signed under the current key; one signed under an older
    # key listed in SECRET_KEY still reads during a rotation's grace period.
    app.config.update(SECRET_KEY=core.settings.secret_key, SECRET_KEY_FALLBACKS=list(core.settings.secret_keys[1:]),
                      MAX_CONTENT_LENGTH=MAX_WEBHOOK_BYTES)
    app.extensions[CORE_EXTENSION] = core

    edge.install(app, core)
    app.register_blueprint(health.bp)
    metrics.install(app)
    voice.install(app, core)
    sms.install(app, core)
    console.install(app, core)  # last: it exempts the webhooks above from CSRF
    return app
