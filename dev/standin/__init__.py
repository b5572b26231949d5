"""Twilio's REST API as a local stand-in: `server` (the app and its thread or process), `api` (the
routes Tipline calls), `admin` (what tests and tools set up), `state` (what it holds), `client` (admin client)."""
