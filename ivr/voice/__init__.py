"""The voice line: Twilio's voice webhooks (`routes`), answered in TwiML built by `script`."""
