"""Recordings as audio, in memory: reading a WAV (`wav`) and the disguised copy (`disguise`).

Both sides use it: the worker checks a recording here before transcribing it, and the
console makes the disguised copy a handler hears. So it lives in `ivr/` (the console may
not import `workers/`), and its failures are its own, not speech recognition's.
"""

from __future__ import annotations


class AudioError(Exception):
    """The bytes are not a readable recording (empty, corrupt, truncated, not audio).

    The worker retries, then gives up and keeps the recording for a person; the console
    cannot make a disguised copy of it either.
    """


class DisguiseError(Exception):
    """A disguised copy could not be made of readable audio (sox missing, failing or too slow)."""
