"""Listening: a handler hears the disguised copy of a recording that could not be transcribed.

The copy is made on each request and never stored (`listening.py`); a finished tip offers
no audio, as its recordings are being deleted at the provider.
"""

from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ivr.console.blueprint import bp, console
from ivr.console.cases import FINISHED
from ivr.console.listening import NothingToHear, disguised_recording
from ivr.console.roles import requires
from ivr.core.provider_errors import ProviderError
from ivr.current import current_core


@bp.get("/tips/<reference>/parts/<int:index>/audio")
@requires("handler")
def listen(reference: str, index: int) -> ResponseReturnValue:
    """The disguised copy of a recording that could not be transcribed, made now, never stored."""
    casework = console().casework
    casework.tip(reference)
    if casework.case(reference).finished in FINISHED:
        return Response("This tip is finished; its audio is no longer offered.\n", 410, mimetype="text/plain")
    try:
        with current_core().provider() as provider:
            audio = disguised_recording(casework.tips, provider, reference, index)
    except NothingToHear as nothing:
        return Response(f"{nothing}\n", 404, mimetype="text/plain")
    except ProviderError as error:
        return Response(f"The recording could not be fetched from the provider: {error}\n", 502,
                        mimetype="text/plain")
    console().audit.append(current_user.name, "listen", tip=reference, detail=f"part={index}")
    return Response(audio, mimetype="audio/wav", headers={"Content-Disposition": "inline"})
