"""RQ's scheduler process, made to die with the worker that forked it.

Each worker forks RQ's scheduler, which queues the retries that fall due (a failed
fetch's retry 10 s on, say). When the worker itself is SIGKILLed (the OOM killer, a fault
test, `kill -9`), nothing told the scheduler: it lived on as an orphan nobody manages,
holding the queues' scheduler locks and a Redis connection, so the worker started in its
place could not take the locks, and a test session's Redis saw an unknown scheduler's
keys appear in later tests. Linux's PR_SET_PDEATHSIG has the kernel send the scheduler
SIGTERM when its parent dies, and SIGTERM is RQ's own clean stop for it (locks released,
its death registered).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Any

from rq.scheduler import RQScheduler

log = logging.getLogger("workers.run")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class TiplineScheduler(RQScheduler):
    """RQ's scheduler, which asks the kernel for SIGTERM when its worker dies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()  # made in the worker, before the fork

    def work(self) -> None:  # runs in the forked scheduler process
        if _terminate_when_parent_dies() and os.getppid() != self._worker_pid:
            self._stop_requested = True  # the worker died before the request took effect: stop cleanly now
        super().work()  # type: ignore[no-untyped-call]  # RQ leaves it unannotated


def _terminate_when_parent_dies() -> bool:
    """Ask the kernel for SIGTERM when this process's parent dies; False if it refused."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
        return True
    log.warning("the scheduler cannot follow its worker (prctl: errno %d): a worker killed with SIGKILL "
                "leaves it running", ctypes.get_errno())
    return False
