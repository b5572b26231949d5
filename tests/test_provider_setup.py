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
TRUNK_SID = "TK" + "5" * 32
OTHER_TRUNK_SID = "TK" + "6" * 32
INTELLIGENCE_SID = "GA" + "7" * 32
OTHER_INTELLIGENCE_SID = "GA" + "8" * 32
FALLBACK = "https://handler.twilio.com/twiml/EH" + "4" * 32
NO_INTELLIGENCE = "no Voice Intelligence services (nothing transcribes calls at Twilio)"
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
                                          "trunk_sid": TRUNK_SID})
    standin.put_trunk(TRUNK_SID, mode="record-from-answer")
    standin.put_number(OTHER_SID, OTHER, **WELL_CONFIGURED)
    standin.put_messaging_service(SERVICE_SID, (OTHER_SID,))

    status, printed, _ = tipline("check")

    assert status == 1
    line, other = printed.split(f"{OTHER} ({OTHER_SID})")
    assert "✓ voice webhook" in line
    assert f"✗ SMS webhook is POST https://old.example/sms; it should be POST {PUBLIC_BASE_URL}/sms/incoming" in line
    assert "✗ status callback https://old.example/status is set" in line
    assert f"✗ SIP trunk {TRUNK_SID} takes the calls instead of our webhook" in line
    assert other.count("✗") == 1 and f"✗ in Messaging Service {SERVICE_SID}" in other
    assert "Advanced Opt-Out OFF" in other and "CLOSE or SUPPORT" in other
    assert "2 number(s) need fixing" in other

    status, printed, _ = tipline("check", "--json")
    report = {n["phone_number"]: n for n in json.loads(printed)["numbers"]}
    assert status == 1 and [f["fine"] for f in report[OTHER]["findings"]].count(False) == 1
    assert json.loads(printed)["account"] == [{"fine": True, "checked": True, "text": NO_INTELLIGENCE}]


def test_setup_turns_caller_name_lookup_off_and_check_flags_it_on(standin: StandIn, tipline) -> None:
    # Given a number that looks up each caller's name (CNAM) and sends it with the call
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED, voice_caller_id_lookup=True)

    status, printed, _ = tipline("check")
    assert status == 1
    assert "✗ caller-name lookup (CNAM) is on: Twilio looks up each caller's name, sends it with every call " \
           "(CallerName) and keeps it in its call log; clear it (setup does)" in printed

    # When setup runs, Then the lookup is off (a boolean, as Twilio's JSON has it) and check says so
    assert tipline("setup", "--number", LINE)[0] == 0
    assert standin.numbers()[LINE]["voice_caller_id_lookup"] is False
    status, printed, _ = tipline("check")
    assert status == 0, printed
    assert "✓ no caller-name lookup (CNAM)" in printed and "✗" not in printed


def test_check_flags_a_voice_intelligence_service_that_transcribes_every_call(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED)
    standin.put_intelligence_service(INTELLIGENCE_SID, "call-insights", auto_transcribe=True, data_logging=True)
    standin.put_intelligence_service(OTHER_INTELLIGENCE_SID, "on-demand", auto_transcribe=False)

    status, printed, _ = tipline("check")

    assert status == 1
    account = printed.split("The account (every number)\n")[1]
    assert f"✗ Voice Intelligence service call-insights ({INTELLIGENCE_SID}) transcribes every call recording " \
           "of the account (Auto-transcribe on)" in account
    assert "turn Auto-transcribe off there, or delete the service; its Data logging is on too" in account
    assert f"✓ Voice Intelligence service on-demand ({OTHER_INTELLIGENCE_SID}): Auto-transcribe off\n" in account
    assert "The account's settings need fixing in Twilio's console." in account
    assert [e.path for e in standin.log() if "Services" in e.path and e.path.startswith("/v2/")] == ["/v2/Services"]
    status, printed, _ = tipline("check", "--json")
    assert status == 1 and [f["fine"] for f in json.loads(printed)["account"]] == [False, True]

    # Without Auto-transcribe, the account is fine
    standin.put_intelligence_service(INTELLIGENCE_SID, "call-insights", auto_transcribe=False)
    status, printed, _ = tipline("check")
    assert status == 0, printed
    assert f"✓ Voice Intelligence service call-insights ({INTELLIGENCE_SID}): Auto-transcribe off" in printed


def test_check_says_whether_a_trunk_records_the_calls(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED, trunk_sid=TRUNK_SID)
    standin.put_number(OTHER_SID, OTHER, **WELL_CONFIGURED, trunk_sid=OTHER_TRUNK_SID)
    standin.put_trunk(TRUNK_SID, mode="record-from-answer-dual")
    standin.put_trunk(OTHER_TRUNK_SID, mode="do-not-record")

    status, printed, _ = tipline("check")

    assert status == 1
    line, other = printed.split(f"{OTHER} ({OTHER_SID})")
    assert f"✗ SIP trunk {TRUNK_SID} takes the calls instead of our webhook, and it records them " \
           "(mode record-from-answer-dual): the recordings stay at Twilio, outside our deletion" in line
    assert f"✗ SIP trunk {OTHER_TRUNK_SID} takes the calls instead of our webhook; it does not record them " \
           "(mode do-not-record): remove the number from the trunk in Twilio's console" in other
    assert "records them (mode" not in other and "does not record" not in line


def test_check_says_when_a_trunk_recording_setting_cannot_be_read(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED, trunk_sid=TRUNK_SID)
    standin.put_trunk(TRUNK_SID, mode="record-from-answer")
    standin.fail_next("GET", rf"^/v1/Trunks/{TRUNK_SID}/Recording$", status=500)

    status, printed, _ = tipline("check")

    assert status == 1  # the number is on a trunk whatever it does: the finding is ✗ either way
    assert f"✗ SIP trunk {TRUNK_SID} takes the calls instead of our webhook; whether it records them could not " \
           "be checked (could not read the trunk's recording setting: the provider answered HTTP 500; try again " \
           "later): look at the trunk's Recording setting" in printed
    assert "records them (mode" not in printed and "does not record" not in printed


@pytest.mark.parametrize(("status_code", "reason"), [(500, "the provider answered HTTP 500; try again later"),
                                                     (403, "the provider refused to list them (HTTP 401/403")])
def test_check_exits_2_and_says_what_to_look_at_when_voice_intelligence_cannot_be_listed(
        standin: StandIn, tipline, status_code: int, reason: str) -> None:
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED)
    standin.fail_next("GET", r"^/v2/Services$", status=status_code)

    status, printed, _ = tipline("check")

    assert status == 2
    assert "? Voice Intelligence services could not be checked" in printed and reason in printed
    assert "in Twilio's console, Voice Intelligence > Services, make sure no service has Auto-transcribe on" in printed
    assert "Some settings could not be checked (?)" in printed
    assert "✓ voice webhook" in printed  # the numbers are still reported
    assert "Every number" not in printed and "need fixing" not in printed


def test_an_account_without_voice_intelligence_has_nothing_that_transcribes(standin: StandIn, tipline) -> None:
    standin.put_number(LINE_SID, LINE, **WELL_CONFIGURED)
    standin.fail_next("GET", r"^/v2/Services$", status=404, code=20404)

    status, printed, _ = tipline("check")

    assert status == 0, printed
    assert "✓ no Voice Intelligence services (the account does not have the product)" in printed


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
