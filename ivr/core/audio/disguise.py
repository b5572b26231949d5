"""A disguised copy of a recording, for a handler who must listen to one.

A voice identifies a person, so a handler never hears the raw recording: they hear this
copy, made on demand, returned as bytes and never stored. sox lowers pitch and formants
together by four semitones and keeps the telephone band; it reads the recording from
stdin and writes to stdout, and is given a temporary directory that cannot exist, so
no effect can leave audio on disk.

A fixed shift is not anonymisation: someone who kept the copy could shift it back.
It stops a handler recognising a voice they know, which is what it is for.
"""

from __future__ import annotations

import shutil
import subprocess

from ivr.core.audio import AudioError, DisguiseError
from ivr.core.audio.wav import pcm16_mono_wav, read_wav_format

PITCH_SHIFT_CENTS = -400
TELEPHONE_BAND_HZ = (300, 3400)
SOX_TIMEOUT_SECONDS = 60  # a 10-minute recording takes about a second
# A path below a file can never be a directory: sox fails rather than write a temp file.
NO_TEMPORARY_DIRECTORY = "/dev/null/no-temporary-files"


def disguise(wav: bytes) -> bytes:
    """A 16-bit mono WAV copy of `wav` with the voice shifted down; same rate and length."""
    wav_format = read_wav_format(wav)
    sox = shutil.which("sox")
    if sox is None:
        raise DisguiseError("sox is not installed: `apt-get install sox` (or `make run`, which installs it).")
    command = [sox, "-q", "-V1", "-R", "--temp", NO_TEMPORARY_DIRECTORY,
               "-t", "wav", "-",
               "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(wav_format.sample_rate), "-",
               # pitch leaves the audio at a lower rate: back to the input's before filtering
               "pitch", str(PITCH_SHIFT_CENTS), "rate", str(wav_format.sample_rate),
               "highpass", str(TELEPHONE_BAND_HZ[0]),
               "lowpass", str(min(TELEPHONE_BAND_HZ[1], wav_format.sample_rate * 9 // 20))]  # below Nyquist
    try:
        finished = subprocess.run(command, input=wav, capture_output=True, timeout=SOX_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise DisguiseError(f"sox did not finish within {SOX_TIMEOUT_SECONDS} s") from error
    if finished.returncode != 0 or not finished.stdout:
        reason = finished.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise AudioError(f"sox could not read the recording: {reason[0]}")
    return pcm16_mono_wav(finished.stdout, wav_format.sample_rate)
