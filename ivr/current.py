"""Where a request finds the process's core: `app.extensions[CORE_EXTENSION]`, set by `create_app`.

One key in one place, so the doors (edge, health, the blueprints' own wiring) and the
tests agree on it without importing the factory.
"""

from __future__ import annotations

from flask import current_app

from ivr.core import Core

CORE_EXTENSION = "tipline"


def current_core() -> Core:
    """The current app's core (inside a request or an app context)."""
    core: Core = current_app.extensions[CORE_EXTENSION]
    return core
