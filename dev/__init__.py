"""Tools for running Tipline on one machine: the local Redis, `make run`, a Twilio-like caller."""
