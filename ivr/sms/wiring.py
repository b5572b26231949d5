"""What the SMS door builds from the core, and where its view finds it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from ivr.core import Core
from ivr.core.prompts import Menus
from ivr.sms.line import SmsLine

EXTENSION = "tipline.sms"


@dataclass(frozen=True)
class SmsDoor:
    """The SMS blueprint's long-lived objects, built once per app."""

    menus: Menus
    sms: SmsLine


def build_sms_door(core: Core) -> SmsDoor:
    return SmsDoor(menus=core.menus, sms=SmsLine(core))


def sms_door() -> SmsDoor:
    """The current app's SMS line (inside a request)."""
    door: SmsDoor = current_app.extensions[EXTENSION]
    return door
