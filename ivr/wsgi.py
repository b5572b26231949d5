"""The WSGI entry point gunicorn loads: the only module-level app."""

from config.settings import Settings
from ivr import create_app
from ivr.core.redaction import configure_logging

settings = Settings.from_env()
configure_logging(settings.log_level)
app = create_app(settings)
