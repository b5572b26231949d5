"""`tipline provider setup|check|fallback-twiml`, end to end against the provider stand-in."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from dev.standin.client import StandIn
from ivr import cli
from tests.conftest import PUBLIC_BASE_URL

LINE = "+441632960001"
OTHER = "+441632960002"
LINE_SID = "PN" + "1" * 32
OTHER_SID = "PN" + "2" * 32
SERVICE_SID = "MG" + "3" * 32
FALLBACK = "https://handler.twilio.com/twiml/EH" + "4" * 32
WELL_CONFIGURED = {"voice_url": f"{PUBLIC_BASE_URL}/voice/incoming", "voice_method": "POST",
                   "sms_url": f"{PUBLIC_BASE_URL}/sms/incoming", "sms_method": "POST"}


@pytest.fixture
def tipline(environment, monkeypatch, capsys):
    """The operator's command, run in the test environment: (exit status, stdout, stderr)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VOICE_FALLBACK_URL", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        status = cli.main(["provider", *argv])
        printed = capsys.readouterr()
        return status, printed.out, printed.err

    return run


def test_setup_sets_the_webhooks_by_post_and_clears_the_status_callback(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, voice_url="https://old.example/voice", voice_method="GET",
                       status_callback="https://old.example/status", voice_fallback_url="https://old.example/fb")
    standin.put_number(OTHER_SID, OTHER, voice_url="https://elsewhere.example/voice")

    status, printed, _ = tipline("setup", "--number", LINE)

    assert status == 0, printed
    line = standin.numbers()[LINE]
    assert {k: line[k] for k in ("voice_url", "voice_method", "sms_url", "sms_method", "status_callback",
                                 "voice_fallback_url", "sms_fallback_url")} == {
        **WELL_CONFIGURED, "status_callback": "", "voice_fallback_url": "", "sms_fallback_url": ""}
    assert standin.numbers()[OTHER]["voice_url"] == "https://elsewhere.example/voice"  # only the number named
    assert tipline("setup", "--number", LINE)[0] == 0 and standin.numbers()[LINE] == line  # idempotent
    updates = [e for e in standin.log() if e.method == "POST" and "IncomingPhoneNumbers" in e.path]
    assert len(updates) == 2 and all(LINE_SID in e.path for e in updates)


def test_setup_sets_the_voice_fallback_by_post_when_one_is_configured(standin: StandIn, tipline,
                                                                       monkeypatch) -> None:
    standin.put_number(LINE_SID, LINE)
    monkeypatch.setenv("VOICE_FALLBACK_URL", FALLBACK)

    assert tipline("setup", "--number", LINE)[0] == 0

    line = standin.numbers()[LINE]
    assert (line["voice_fallback_url"], line["voice_fallback_method"]) == (FALLBACK, "POST")
    status, printed, _ = tipline("check")
    assert status == 0 and f"✓ voice fallback: POST {FALLBACK}" in printed


def test_setup_refuses_a_number_the_account_does_not_have_and_names_those_it_has(standin: StandIn,
                                                                                 tipline) -> None:
    standin.put_number(LINE_SID, LINE)

    status, _, errors = tipline("setup", "--number", "+447700900123")

    assert status == 2
    assert f"+447700900123 is not one of this account's numbers (it has: {LINE})" in errors
    assert not [e for e in standin.log() if e.method == "POST" and "IncomingPhoneNumbers" in e.path]


def test_setup_refuses_an_http_base_url_in_production(standin: StandIn, environment, tipline, monkeypatch) -> None:
    standin.put_number(LINE_SID, LINE)
    monkeypatch.setenv("TIPLINE_ENV", "production")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://tipline.example.org")

    status, _, errors = tipline("setup", "--number", LINE)
    assert status == 2 and "PUBLIC_BASE_URL must be https://" in errors
    assert standin.numbers()[LINE]["voice_url"] == ""


def test_check_is_clean_after_setup(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, status_callback="https://old.example/status")
    assert tipline("check")[0] == 1

    tipline("setup", "--number", LINE)
    status, printed, _ = tipline("check")

    assert status == 0, printed
    assert "✗" not in printed and f"✓ voice webhook: POST {PUBLIC_BASE_URL}/voice/incoming" in printed


def test_check_names_what_needs_fixing_on_each_number(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, **{**WELL_CONFIGURED, "sms_url": "https://old.example/sms",
                                          "status_callback": "https://old.example/status",
                                          "trunk_sid": "TK" + "5" * 32})
    standin.put_number(OTHER_SID, OTHER, **WELL_CONFIGURED)
    standin.put_messaging_service(SERVICE_SID, (OTHER_SID,))

    status, printed, _ = tipline("check")

    assert status == 1
    line, other = printed.split(f"{OTHER} ({OTHER_SID})")
    assert "✓ voice webhook" in line
    assert f"✗ SMS webhook is POST https://old.example/sms; it should be POST {PUBLIC_BASE_URL}/sms/incoming" in line
    assert "✗ status callback https://old.example/status is set" in line
    assert "✗ SIP trunk" in line and "record or transcribe" in line
    assert other.count("✗") == 1 and f"✗ in Messaging Service {SERVICE_SID}" in other
    assert "Advanced Opt-Out OFF" in other and "CLOSE or SUPPORT" in other
    assert "2 number(s) need fixing" in other

    status, printed, _ = tipline("check", "--json")
    report = {n["phone_number"]: n for n in json.loads(printed)}
    assert status == 1 and [f["fine"] for f in report[OTHER]["findings"]].count(False) == 1


def test_a_get_webhook_or_fallback_is_not_good_enough(standin: StandIn, tipline, monkeypatch) -> None:
    monkeypatch.setenv("VOICE_FALLBACK_URL", FALLBACK)
    standin.put_number(LINE_SID, LINE, **{**WELL_CONFIGURED, "voice_method": "GET",
                                          "voice_fallback_url": FALLBACK, "voice_fallback_method": "GET"})

    status, printed, _ = tipline("check")

    assert status == 1
    assert f"✗ voice webhook is GET {PUBLIC_BASE_URL}/voice/incoming" in printed
    assert f"✗ voice fallback is GET {FALLBACK}" in printed


def test_fallback_twiml_says_dial_999_and_listens_for_nothing(tipline) -> None:
    status, printed, errors = tipline("fallback-twiml")

    assert status == 0
    response = ET.fromstring(printed)
    assert response.tag == "Response" and [child.tag for child in response] == ["Say", "Hangup"]
    assert "If someone is in danger, dial 999" in response.findtext("Say", "")
    assert not list(response.iter("Gather"))
    assert not list(response.iter("Record"))
    assert "never by GET" in errors
