"""The voice line: Twilio's voice webhooks (`routes`, and `returning` for a tipster calling
back), answered in TwiML built by `script`."""

from __future__ import annotations

from flask import Flask

from ivr.core import Core


def install(app: Flask, core: Core) -> None:
    """Build the voice line's objects from the core and register its blueprint."""
    from ivr.voice import returning, routes, wiring  # noqa: F401  # `returning` adds its steps to routes.bp

    app.extensions[wiring.EXTENSION] = wiring.build_voice_line(core)
    app.register_blueprint(routes.bp)
