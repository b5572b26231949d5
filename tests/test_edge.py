"""The edge: only the provider's signed requests get in, and only allow-listed fields get past."""

from __future__ import annotations

import dataclasses

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from dev.twilio.calls import Call, TwilioLike
from ivr.edge import CallStep, RecordingStatus
from tests.conftest import CALLER_NUMBER, PUBLIC_BASE_URL

IDENTIFYING = ("From", "Caller", "CallerName", "FromCity", "FromZip", "FromCountry", "CallerCity", "CallerZip",
               "ForwardedFrom", "StirVerstat", "CallToken", "AddOns", "To", "Called", "RecordingUrl")


def full_twilio_form(call: Call) -> dict[str, str]:
    form = call._call_fields()
    form.update({"Digits": "1", "CallerName": "J SMITH", "ForwardedFrom": "+447700900111",
                 "AddOns": '{"status":"successful","results":{"lookup":{"caller_name":"J SMITH"}}}'})
    return form


def test_an_unsigned_request_is_refused(app) -> None:
    response = app.test_client().post("/voice/incoming", data={"From": CALLER_NUMBER})
    assert response.status_code == 403
    assert "not signed by the provider" in response.get_data(as_text=True)


def test_a_forged_signature_is_refused(twilio: TwilioLike) -> None:
    answer = twilio.post("/voice/incoming", {"From": CALLER_NUMBER}, signature="bm90IGEgc2lnbmF0dXJl")
    assert answer.status == 403


def test_a_signature_made_with_another_auth_token_is_refused(twilio: TwilioLike) -> None:
    url = PUBLIC_BASE_URL + "/voice/incoming"
    form = {"From": CALLER_NUMBER}
    wrong = RequestValidator("0" * 32).compute_signature(url, form)
    assert twilio.post(url, form, signature=wrong).status == 403


@pytest.mark.parametrize("signed_url", [
    "http://tipline.example.org/voice/incoming",  # http, but Twilio called https
    "https://evil.example.com/voice/incoming",
    "https://tipline.example.org/voice/incoming/",  # trailing slash
    "https://tipline.example.org/voice/language",  # another path
])
def test_a_signature_over_another_url_is_refused(twilio: TwilioLike, settings, signed_url: str) -> None:
    form = {"CallSid": "CA" + "0" * 32}
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(signed_url, form)
    assert twilio.post(PUBLIC_BASE_URL + "/voice/incoming", form, signature=signature).status == 403


def test_a_field_added_after_signing_is_refused(twilio: TwilioLike, settings) -> None:
    url = PUBLIC_BASE_URL + "/voice/language"
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, {"Digits": "1"})
    assert twilio.post(url, {"Digits": "1", "Extra": "x"}, signature=signature).status == 403


def test_a_field_sent_twice_is_signed_with_both_values(app, settings) -> None:
    """Twilio signs every value of a repeated field; the edge checks them all (`_SignedFields`)."""
    signed = MultiDict([("Digits", "1"), ("Digits", "2")])
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(PUBLIC_BASE_URL + "/voice/language",
                                                                               signed)
    client = app.test_client()
    assert client.post("/voice/language", data=signed, headers={"X-Twilio-Signature": signature}).status_code == 200
    altered = MultiDict([("Digits", "1"), ("Digits", "3")])
    assert client.post("/voice/language", data=altered, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_a_reordered_query_string_is_refused(caller: Call, twilio: TwilioLike, settings) -> None:
    caller.dials()
    action = caller._waiting.get("action")
    signed = action + "&x=1"
    reordered = action.replace("?t=", "?x=1&t=")
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(signed, {"Digits": "1"})
    assert twilio.post(reordered, {"Digits": "1"}, signature=signature).status == 403
    assert twilio.post(signed, {"Digits": "1"}, signature=signature).status == 200


def test_forwarded_headers_cannot_change_the_url_that_is_checked(app, settings) -> None:
    form = {"CallSid": "CA" + "0" * 32}
    spoofed = "https://attacker.example.net/voice/incoming"
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(spoofed, form)
    response = app.test_client().post("/voice/incoming", data=form, headers={
        "X-Twilio-Signature": signature, "X-Forwarded-Host": "attacker.example.net", "X-Forwarded-Proto": "https"})
    assert response.status_code == 403


def test_a_get_is_not_a_webhook(app) -> None:
    assert app.test_client().get("/voice/incoming").status_code == 405


def test_a_body_that_is_not_a_form_is_refused(app, settings) -> None:
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(PUBLIC_BASE_URL + "/voice/incoming", {})
    response = app.test_client().post("/voice/incoming", json={"From": CALLER_NUMBER},
                                      headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_a_huge_body_is_refused_before_it_is_read(twilio: TwilioLike) -> None:
    answer = twilio.post("/voice/incoming", {"Body": "x" * 200_000})
    assert answer.status == 413


@pytest.mark.parametrize("view_type", [CallStep, RecordingStatus])
def test_the_views_hold_nothing_that_identifies_the_caller(caller: Call, view_type) -> None:
    form = full_twilio_form(caller)
    view = view_type.from_request_values(form, token="tok")
    values = dataclasses.asdict(view)
    assert CALLER_NUMBER not in repr(values) and "J SMITH" not in repr(values) and "LONDON" not in repr(values)
    allowed_provider_fields = set(view_type.FIELDS)
    assert not allowed_provider_fields & set(IDENTIFYING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.token = "changed"


def test_allow_listed_values_are_trimmed_and_bounded() -> None:
    view = CallStep.from_request_values({"Digits": "  " + "1" * 500 + " ", "RecordingDuration": "abc"}, token=None)
    assert view.digits is None  # no caller presses 500 keys: not a keypress (tests/test_numeric_fields.py)
    assert view.recording_seconds == 0
