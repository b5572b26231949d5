"""gunicorn settings for the web app (`gunicorn -c config/gunicorn.conf.py ivr.wsgi:app`).

The access log never carries query strings (the call-state token rides there) nor the
client address; every log line passes through the phone-number redactor.
"""

import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from config.settings import Settings  # noqa: E402
from ivr.core.metrics_dir import use_metrics_dir  # noqa: E402
from ivr.core.redaction import logging_config  # noqa: E402

_settings = Settings.from_env()
# /metrics adds up every worker's counters from files here (prometheus-client's multiprocess
# mode): set before a worker loads the app, and emptied of a previous run's files.
use_metrics_dir(_settings, clear=True)

bind = f"{_settings.host}:{_settings.port}"
# gunicorn's control socket (`gunicornc`) with the other runtime files under var/, not ~/.gunicorn/.
control_socket = str(_settings.var_dir / "gunicorn.ctl")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
# Two threads: measured best on 2 cores (bench/webhook_throughput.py); more threads only
# queue on the GIL and raise p99.
threads = int(os.environ.get("WEB_THREADS", 2))
# Twilio waits 15 s for an answer; a request still running after that helps nobody.
timeout = 15
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# Commas and units between the numbers: `200 1234 12ms` would read as a phone number to the redactor.
access_log_format = '%(m)s %(U)s %(s)s, %(B)s bytes, %(M)s ms'
logconfig_dict = logging_config(_settings.log_level)


def child_exit(server, worker):  # noqa: ANN001  # gunicorn's hook signature
    """A worker died: its live gauges go from the scrape (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
