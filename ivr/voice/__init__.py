"""The voice line: Twilio's voice webhooks (`routes`), answered in TwiML built by `script`."""

from __future__ import annotations

from flask import Flask

from ivr.core import Core


def install(app: Flask, core: Core) -> None:
    """Build the voice line's objects from the core and register its blueprint."""
    from ivr.voice import routes, wiring

    app.extensions[wiring.EXTENSION] = wiring.build_voice_line(core)
    app.register_blueprint(routes.bp)
