"""The SMS line: text a tip, get a reference, leave no number behind."""

from __future__ import annotations

from flask import Flask

from ivr.core import Core


def install(app: Flask, core: Core) -> None:
    """Build the SMS line from the core and register its blueprint."""
    from ivr.sms import routes, wiring

    app.extensions[wiring.EXTENSION] = wiring.build_sms_door(core)
    app.register_blueprint(routes.bp)
