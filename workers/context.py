"""The worker process's long-lived objects: the core, a provider client, the recogniser.

A worker builds only the core (`ivr.core.build_core`), never the web app: no Flask, no
voice script, no SMS line (tests/test_layers.py). The recogniser's model is loaded once
per process, before the first job (RQ's SimpleWorker runs jobs in this process, so every
job reuses it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from config.settings import Settings
from ivr.core import Core, build_core
from ivr.core.jobs import JobArguments
from ivr.core.provider import Provider
from workers.speech import Recogniser, load_recogniser


@dataclass(frozen=True)
class WorkerContext:
    core: Core
    provider: Provider

    @property
    def arguments(self) -> JobArguments:
        """Opens the sealed arguments jobs carry."""
        return self.core.arguments

    @functools.cached_property
    def recogniser(self) -> Recogniser:
        return load_recogniser(self.core.settings)


@functools.cache
def worker_context() -> WorkerContext:
    core = build_core(Settings.from_env())
    return WorkerContext(core=core, provider=core.provider())
