"""The worker process's services, built once from the environment before any job runs."""

from __future__ import annotations

import functools

from config.settings import Settings
from ivr.services import Services, build_services


@functools.cache
def worker_services() -> Services:
    return build_services(Settings.from_env())
