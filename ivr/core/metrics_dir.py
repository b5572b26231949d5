"""Where this machine's processes write their metrics, set before prometheus-client loads.

prometheus-client picks, when first imported, between counters kept in the process and
counters in files under PROMETHEUS_MULTIPROC_DIR (its multiprocess mode), which is how the
gunicorn workers and the RQ workers of one machine add up in one `/metrics` scrape. So each
process's entry point (config/gunicorn.conf.py, workers/run.py) calls `use_metrics_dir`
first thing; processes that never call it (tests in one process, the CLI) count in memory.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from config.settings import Settings

log = logging.getLogger(__name__)
ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def use_metrics_dir(settings: Settings, clear: bool = False) -> Path | None:
    """Make this process (and its children) count into `settings.metrics_dir`; `clear`
    (gunicorn's master, at start) drops the files of processes no longer running (a previous
    run's; a running worker's stay). None: too late, this process counts in memory."""
    if "prometheus_client" in sys.modules and os.environ.get(ENVIRONMENT_VARIABLE) != str(settings.metrics_dir):
        log.warning("prometheus-client was loaded before its directory was set: this process counts in memory")
        return None
    path = settings.metrics_dir
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if clear:
        for file in path.glob("*.db"):
            if not _running(file.stem.rsplit("_", 1)[-1]):
                file.unlink(missing_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(path)
    return path


def _running(pid: str) -> bool:
    """Is process `pid` (a file name's last part) alive? Not a number: not ours, so no."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
