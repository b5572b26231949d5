"""Twilio's side of calls and texts: `calls` (a call following our TwiML), `texts` (a phone texting
the line), `http_transport` (POSTs to a running Tipline). Not the `twilio` library: that is imported absolutely."""
