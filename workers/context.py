"""The worker process's long-lived objects, built once from the environment.

The recogniser's model is loaded once per process, before the first job (RQ's
SimpleWorker runs jobs in this process, so every job reuses it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from config.settings import Settings
from ivr.jobs import JobArguments
from ivr.provider import Provider
from ivr.services import Services, build_services
from workers.speech import Recogniser, load_recogniser


@dataclass(frozen=True)
class WorkerContext:
    services: Services
    provider: Provider

    @functools.cached_property
    def arguments(self) -> JobArguments:
        """Opens the sealed arguments jobs carry."""
        return JobArguments(self.services.settings.secret_key)

    @functools.cached_property
    def recogniser(self) -> Recogniser:
        return load_recogniser(self.services.settings)


@functools.cache
def worker_context() -> WorkerContext:
    settings = Settings.from_env()
    return WorkerContext(services=build_services(settings), provider=Provider(settings))
