"""Twilio's side of a text: a phone sending signed /sms/incoming webhooks, for tests and tools."""

from __future__ import annotations

import secrets

from dev.twilio.calls import TwilioLike, TwimlError, Webhook, new_sid, parse_twiml


class Phone:
    """A mobile texting our number: each text is one signed POST of /sms/incoming.

    The form carries Twilio's real field set, identifying fields included, so the edge's
    job is tested. Given a provider, each inbound message is also left there first, as
    Twilio stores it before it tells us, and each <Message> of our reply is left there
    after, as the outbound-reply record Twilio creates from the TwiML (status "delivered").
    """

    def __init__(self, twilio: TwilioLike, from_number: str, to_number: str = "+448005550111") -> None:
        self.twilio = twilio
        self.from_number = from_number
        self.to_number = to_number
        self.sent: list[Webhook] = []
        self.reply_sids: list[str] = []  # the outbound-reply records left at the provider

    def sends(self, body: str, media: int = 0, message_sid: str | None = None) -> str:
        """Text `body` (with `media` photos); returns the reply's text ('' when none)."""
        sid = message_sid or new_sid("MM" if media else "SM")
        form = self.fields(sid, body, media)
        if self.twilio.provider and message_sid is None:
            photos = tuple(url.rsplit("/", 1)[1] for name, url in form.items() if name.startswith("MediaUrl"))
            self.twilio.provider.put_message(sid, body, media=photos, sender=self.from_number)
        webhook = self.twilio.post("/sms/incoming", form)
        self.sent.append(webhook)
        if webhook.status != 200:
            raise TwimlError(f"/sms/incoming answered {webhook.status}: {webhook.body[:200]}")
        return self._replied(webhook.body)

    def repeats_last(self) -> str:
        """Twilio retrying the last webhook (same MessageSid, same form)."""
        webhook = self.twilio.post(self.sent[-1].url, self.sent[-1].form)
        return self._replied(webhook.body) if webhook.status == 200 else reply_text(webhook.body)

    def _replied(self, twiml: str) -> str:
        """The reply's text; with a provider, each <Message> is left there as Twilio sends it."""
        texts = reply_texts(twiml)
        if self.twilio.provider:
            for text in texts:
                sid = new_sid("SM")
                self.reply_sids.append(sid)
                self.twilio.provider.put_message(sid, text, status="delivered", direction="outbound-reply")
        return "\n".join(texts)

    @property
    def message_sids(self) -> list[str]:
        return [webhook.form["MessageSid"] for webhook in self.sent]

    def fields(self, sid: str, body: str, media: int) -> dict[str, str]:
        form = {
            "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.twilio.account_sid,
            "MessagingServiceSid": "MG" + "0" * 32, "From": self.from_number, "To": self.to_number, "Body": body,
            "NumMedia": str(media), "NumSegments": str(max(1, -(-len(body) // 153))), "SmsStatus": "received",
            "FromCity": "LONDON", "FromState": "", "FromZip": "E1 6AN", "FromCountry": "GB",
            "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "GB", "ApiVersion": "2010-04-01",
        }
        for index in range(media):
            form[f"MediaUrl{index}"] = (f"https://api.twilio.com/2010-04-01/Accounts/{self.twilio.account_sid}"
                                        f"/Messages/{sid}/Media/ME{secrets.token_hex(16)}")
            form[f"MediaContentType{index}"] = "image/jpeg"
        return form


def reply_text(body: str) -> str:
    """The text of a MessagingResponse's <Message> verbs, joined ('' when there is none)."""
    return "\n".join(reply_texts(body))


def reply_texts(body: str) -> list[str]:
    """The text of each of a MessagingResponse's <Message> verbs."""
    verbs = parse_twiml(body)
    for verb in verbs:
        if verb.tag != "Message":
            raise TwimlError(f"unexpected verb <{verb.tag}> in an SMS reply")
    return ["".join(verb.itertext()) for verb in verbs]
