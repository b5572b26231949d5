"""The surge bench runs end to end: a few calls and texts through the real processes, every
tip once, with its transcript, and a plot; and the workers it starts run below the web's priority."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT
from dev.processes import process_environment

pytestmark = pytest.mark.slow


def test_the_smoke_surge_loses_nothing_duplicates_nothing_and_draws_its_plot(tmp_path: Path) -> None:
    plot = tmp_path / "smoke.png"
    finished = subprocess.run([sys.executable, "bench/surge.py", "--smoke", "--plot", str(plot)],
                              cwd=PROJECT_ROOT, env=process_environment({}), capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = finished.stdout
    assert re.search(r"^tips lost\s+0$", report, re.MULTILINE), report
    assert re.search(r"^tips duplicated\s+0$", report, re.MULTILINE), report
    assert "PASS  nothing lost (0)" in report and "PASS  nothing duplicated (0)" in report, report
    # Each of the 3 calls was transcribed, and the 3 voice tips were timed from callback to transcript.
    delays = re.findall(r"callback -> transcript s, median / p95\s+(?:-|[\d.]+ / [\d.]+\s+\(n=(\d+)\))", report)
    assert sum(int(n or 0) for n in delays) == 3, report
    # The web keeps the niceness it was started with; the workers run at 10 more (a lower priority).
    ours = os.nice(0)
    assert re.search(rf"^niceness: web \(gunicorn\)\s+{ours}$", report, re.MULTILINE), report
    assert re.search(rf"^niceness: transcription worker\s+{min(19, ours + 10)}$", report, re.MULTILINE), report
    assert plot.read_bytes().startswith(b"\x89PNG") and f"plot: {plot}" in report
