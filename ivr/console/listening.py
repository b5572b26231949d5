"""Listening to a recording that could not be transcribed, or whose transcript is doubtful:
a disguised copy, made on demand.

A part the worker could not transcribe (unreadable audio after the last retry, speech
with no words made out, a language the model does not cover), and a transcript the
recogniser was unsure of as a whole (`ivr.core.confidence`, within
DOUBTFUL_AUDIO_MAX_PERCENT), keeps a sealed handle to its recording, and the recording
stays at the provider until a handler has reviewed it.
A voice identifies a person, so the handler hears only `ivr.core.audio.disguise`'s copy
(promise 3): the recording is fetched from the provider's API host into memory, passed
through sox on pipes, and the copy is returned for the route to stream. Nothing is
written to disk and nothing is kept. Listening deletes nothing either: the recording is
deleted at the provider when the handler's review is finished, which is the console's
decision, not this module's.
"""

from __future__ import annotations

from ivr.core.audio.disguise import disguise
from ivr.core.provider import Provider
from ivr.core.tips import AWAITING_LANGUAGE, AWAITING_TRANSCRIPT, NO_SPEECH, READY, TRANSCRIPTION_FAILED, TipStore

# The worker keeps a part's recording for a person when it ends in one of these, and for
# a ready part whose transcript is doubtful (its kept handle then says "doubtful").
AUDIO_KEPT_STATUSES = (TRANSCRIPTION_FAILED, AWAITING_LANGUAGE)
# Why a part in any other status has nothing to hear: what the handler is told.
_NO_AUDIO_BECAUSE = {
    READY: "it was transcribed and its recording deleted: read its transcript",  # unless kept as doubtful
    NO_SPEECH: "no speech was detected in it and its recording was deleted",
    AWAITING_TRANSCRIPT: "it is still being transcribed; its recording can be heard only if that fails",
}


class NothingToHear(LookupError):
    """The tip part offers no recording: transcribed, not finished, gone, or no such part."""


def disguised_recording(tips: TipStore, provider: Provider, reference: str, part_index: int) -> bytes:
    """The disguised WAV copy of a tip part's kept recording, made now and never stored.

    Raises NothingToHear (its message says why) when the part offers no recording. The
    provider's errors pass through (`RecordingNotFound` when the recording is gone,
    `ProviderUnavailable`, `RecordingTooLarge`, ...), and so do ivr.core.audio's: AudioError
    when the recording is not readable audio (often why transcription failed),
    DisguiseError when sox is missing or fails. Each has its own class, so the route can
    tell the handler which it was.
    """
    status = tips.part_status(reference, part_index)
    if status is None:
        raise NothingToHear("nothing to hear: there is no such tip part")
    kept_audio = tips.kept_audio(reference, part_index) if status in (*AUDIO_KEPT_STATUSES, READY) else None
    if status not in AUDIO_KEPT_STATUSES and not (status == READY and kept_audio and kept_audio.get("doubtful")):
        reason = _NO_AUDIO_BECAUSE.get(status, f"its status is '{status}'")
        raise NothingToHear(f"nothing to hear in this part: {reason}")
    if kept_audio is None:  # gone at the provider before it was transcribed, or the tip was shredded
        raise NothingToHear("nothing to hear in this part: no recording was kept for it")
    return disguise(provider.fetch_recording(kept_audio["recording_sid"]))
