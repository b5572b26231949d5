"""What the voice door builds from the core, and where its views find it.

The Script renders every menu once at start-up; the CallStateCodec seals each step's
choices into the next URL. Both are the voice line's own, so the core (and the worker)
never build them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from ivr.core import Core
from ivr.core.call_state import CallStateCodec
from ivr.core.durability import StorageGuard
from ivr.core.follow_up import FollowUp
from ivr.core.pin_guard import PinGuard
from ivr.core.pin_pool import PinPool
from ivr.core.prompts import Menus
from ivr.core.recordings import RecordingIntake
from ivr.core.replication import ReplicaBarrier
from ivr.voice.script import Script

EXTENSION = "tipline.voice"


@dataclass(frozen=True)
class VoiceLine:
    """The voice blueprint's long-lived objects, built once per app."""

    script: Script
    call_states: CallStateCodec
    menus: Menus
    recordings: RecordingIntake
    pin_guard: PinGuard  # a caller back with a reference: the same guard as SMS, one lock-out per reference
    follow_up: FollowUp
    storage: StorageGuard  # production refuses to store into a Redis that could lose it
    replicas: ReplicaBarrier  # what the caller is told is done is on a replica first
    pin_pool: PinPool  # a new tip's PIN, minted ahead with its hash


def build_voice_line(core: Core) -> VoiceLine:
    call_states = CallStateCodec(core.settings.secret_keys)
    return VoiceLine(
        script=Script(core.menus, core.support, call_states, core.settings.public_base_url),
        call_states=call_states,
        menus=core.menus,
        recordings=core.recordings,
        pin_guard=core.pin_guard,
        follow_up=core.follow_up,
        storage=core.storage,
        replicas=core.replicas,
        pin_pool=core.pin_pool,
    )


def voice_line() -> VoiceLine:
    """The current app's voice line (inside a request)."""
    line: VoiceLine = current_app.extensions[EXTENSION]
    return line
