"""Jobs for recordings: transcribe into the tip, then delete the provider's copies.

Order matters (promise 4): the transcript is committed to the tip first, and only then
are the recording and the call log deleted at the provider. Every step is safe to repeat:
a job killed anywhere and run again finds the part already finished and goes straight to
the clean-up, and deleting what is already gone is a success.

Audio that cannot be transcribed is never thrown away: a language the model does not
cover, audio that stays unreadable after the last retry, or a recording too large to
fetch leaves the recording at the provider and a sealed handle to it in the tip, for a
person to review (as a disguised copy). So does a transcript the recogniser was unsure of
as a whole (`ivr.core.confidence.doubtful_overall`): it is stored and queued as usual, and
its recording is kept too, within DOUBTFUL_AUDIO_MAX_PERCENT of the week's transcripts
(`ivr.core.doubtful_audio`); over that share it is deleted as usual.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from rq import get_current_job

from ivr.core.audio import AudioError
from ivr.core.audio.wav import wav_duration_seconds
from ivr.core.confidence import doubtful_overall
from ivr.core.doubtful_audio import WINDOW_DAYS, DoubtfulAudioAllowance
from ivr.core.jobs import RecordingHandle, enqueue_call_deletion
from ivr.core.metrics import observe_transcription
from ivr.core.provider import ProviderError, RecordingNotFound, RecordingTooLarge, StillInProgress
from ivr.core.recordings import transcription_timeout
from ivr.core.statuses import PartStatus
from ivr.core.tips import AWAITING_LANGUAGE, FINAL_PART_STATUSES, NO_SPEECH, READY, TRANSCRIPTION_FAILED, TipStore
from workers.context import WorkerContext, worker_context

log = logging.getLogger(__name__)

KEEP_RECORDING = (AWAITING_LANGUAGE, TRANSCRIPTION_FAILED)


def keeps_recording(tips: TipStore, reference: str, index: int, status: PartStatus | None) -> bool:
    """Is this part's recording kept at the provider for a person: one that could not be
    transcribed, or a doubtful transcript's (a ready part with a kept handle)?"""
    return status in KEEP_RECORDING or (status == READY and tips.keeps_audio(reference, index))


def transcribe_recording(sealed_handle: str) -> None:
    context = worker_context()
    handle = context.arguments.open_handle(sealed_handle)
    status = context.core.tips.part_status(handle.reference, handle.part)
    if status is None:
        log.warning("a recording's tip no longer exists; deleting the provider's copies")
    elif status not in FINAL_PART_STATUSES:
        status = _transcribe_into_tip(context, handle)
    keep = keeps_recording(context.core.tips, handle.reference, handle.part, status)
    _delete_provider_copies(context, handle, keep_recording=keep, sealed_handle=sealed_handle)


def _transcribe_into_tip(context: WorkerContext, handle: RecordingHandle) -> PartStatus:
    tips, language = context.core.tips, handle.choices.language or context.core.menus.fallback_language
    kept_audio = {"recording_sid": handle.recording_sid}
    if language not in context.recogniser.languages:
        tips.finish_part(handle.reference, handle.part, AWAITING_LANGUAGE, kept_audio=kept_audio)
        log.info("recording kept for a person: the model does not transcribe %s", language)
        return AWAITING_LANGUAGE
    started = time.monotonic()
    try:
        wav = context.provider.fetch_recording(handle.recording_sid)
        limit_time_to_audio(wav_duration_seconds(wav))
        transcript = context.recogniser.transcribe(wav, language)
        del wav
        observe_transcription(time.monotonic() - started, transcript.audio_seconds)
    except RecordingNotFound:
        tips.finish_part(handle.reference, handle.part, TRANSCRIPTION_FAILED)
        log.error("a recording was gone at the provider before it was transcribed")
        return TRANSCRIPTION_FAILED
    except RecordingTooLarge:
        tips.finish_part(handle.reference, handle.part, TRANSCRIPTION_FAILED, kept_audio=kept_audio)
        log.error("a recording was too large to fetch; kept at the provider for a person")
        return TRANSCRIPTION_FAILED
    except (ProviderError, AudioError) as error:  # unavailable, not audio, refused: worth another try
        if _retries_left() > 0:
            log.warning("transcription failed (%s); it will be retried", type(error).__name__)
            raise
        tips.finish_part(handle.reference, handle.part, TRANSCRIPTION_FAILED, kept_audio=kept_audio)
        log.error("transcription failed after the last retry (%s); audio kept for a person", type(error).__name__)
        return TRANSCRIPTION_FAILED
    if not transcript.speech_detected:
        tips.finish_part(handle.reference, handle.part, NO_SPEECH)
        status = NO_SPEECH
    elif transcript.text.strip():
        keep = _may_keep_doubtful(context, doubtful_overall(transcript.words))
        tips.finish_part(handle.reference, handle.part, READY, transcript=transcript.text, words=transcript.words,
                         kept_audio={**kept_audio, "doubtful": True} if keep else None)
        status = READY
    else:  # someone spoke, but the model made out no words: a person must listen
        tips.finish_part(handle.reference, handle.part, TRANSCRIPTION_FAILED, kept_audio=kept_audio)
        log.warning("speech was heard but no words were made out; audio kept for a person")
        return TRANSCRIPTION_FAILED
    log.info("recording transcribed: %s, %.0f s of audio in %.1f s", status, transcript.audio_seconds,
             time.monotonic() - started)
    return status


def _may_keep_doubtful(context: WorkerContext, doubtful: bool) -> bool:
    """Count a transcript; True when it is doubtful and its recording may be kept for a person."""
    allowance = DoubtfulAudioAllowance(context.core.redis, context.core.settings.doubtful_audio_max_percent)
    keep = allowance.count(doubtful)
    if keep:
        log.info("a doubtful transcript's recording is kept at the provider until a handler has reviewed it")
    elif doubtful:
        log.warning("a doubtful transcript's recording is deleted as usual: DOUBTFUL_AUDIO_MAX_PERCENT of "
                    "the last %d days' transcripts are kept already", WINDOW_DAYS)
    return keep


def limit_time_to_audio(audio_seconds: float) -> int:
    """Shorten the job's time limit to what the audio fetched needs; the new limit (0: none).

    The limit RQ armed came from the callback's duration, which is only the provider's
    word (bounded at the edge, or the ceiling when it was nonsense). The audio is the
    truth: RQ's death penalty is SIGALRM, so the alarm is re-armed, never lengthened
    (RQ's registries were told the enqueued limit). Outside a worker there is no alarm.
    """
    if threading.current_thread() is not threading.main_thread():
        return 0
    remaining = signal.alarm(0)
    if remaining == 0:
        return 0
    limit = min(remaining, transcription_timeout(audio_seconds))
    signal.alarm(limit)
    return limit


def _retries_left() -> int:
    job = get_current_job()
    return int(job.retries_left or 0) if job else 0


def _delete_provider_copies(context: WorkerContext, handle: RecordingHandle, keep_recording: bool,
                            sealed_handle: str) -> None:
    """After the commit: the recording (unless kept for a person) and the call log."""
    if not keep_recording:
        context.provider.delete_recording(handle.recording_sid)
    if not handle.call_sid:
        return
    try:
        context.provider.delete_call(handle.call_sid)
    except StillInProgress:
        enqueue_call_deletion(context.core.redis, sealed_handle)
        log.info("the call is still in progress at the provider; its deletion is queued")


def delete_call(sealed_handle: str) -> None:
    """Delete a call log at the provider; StillInProgress makes RQ try again later."""
    context = worker_context()
    handle = context.arguments.open_handle(sealed_handle)
    if handle.call_sid:
        context.provider.delete_call(handle.call_sid)


def delete_reviewed_recordings(reference: str) -> None:
    """A handler passed on or closed the tip: the recordings kept for them go, at the
    provider and then their handles here (promise 3). Gone already counts as done, so a
    retry after a crash is harmless."""
    context = worker_context()
    tips = context.core.tips
    tip = tips.get(reference)
    for part in tip.parts if tip else ():
        kept = tips.kept_audio(reference, part.index)
        if kept:
            context.provider.delete_recording(kept["recording_sid"])
            tips.drop_kept_audio(reference, part.index)


def delete_recordings(sealed_sids: str) -> None:
    """Retention deleted a tip that still had recordings kept at the provider for a person:
    they go too. Gone already counts as done, so a retry is harmless."""
    context = worker_context()
    for recording_sid in context.core.arguments.open_recording_sids(sealed_sids):
        context.provider.delete_recording(recording_sid)
