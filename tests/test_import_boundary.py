"""The web app does not import the workers: nothing under ivr/ reaches workers/ but by a job's name.

The console and the webhooks share `ivr/` with the workers (tips, vault, provider, audio),
never the other way round: a web process must not load the speech model, and a worker's
code must not become the console's by accident. So `ivr/` names worker code only as a
string RQ resolves in the worker ("workers.recordings.transcribe_recording"). This test
parses every module under ivr/ and fails on any import of `workers` (plain, from, or
through importlib / __import__); it first proves it catches planted violations, and
checks that each job name ivr/ enqueues is a function the workers really have.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT

WORKERS = "workers"
JOB_NAME = re.compile(r"workers(?:\.[A-Za-z_]\w*)+")
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _is_workers(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] == WORKERS


def workers_imports(source: str) -> list[str]:
    """Ways `source` imports worker code, as 'line N: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _is_workers(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_workers(node.module):
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            first = node.args[0] if node.args else None
            if (called in DYNAMIC_IMPORTS and isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and _is_workers(first.value)):
                found.append(f"line {node.lineno}: {called}({first.value!r})")
    return found


def job_names(source: str) -> set[str]:
    """The strings in `source` that name worker code (the jobs it enqueues by name)."""
    return {node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and JOB_NAME.fullmatch(node.value)}


def job_policies(source: str) -> list[str]:
    """Where `source` queues an RQ job or sets a retry or TTL policy, as 'line N: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if called in ("enqueue_call", "enqueue_at", "enqueue_in", "Retry"):
                found.append(f"line {node.lineno}: {called}(...)")
            found += [f"line {node.lineno}: {k.arg}=" for k in node.keywords if k.arg in ("failure_ttl", "result_ttl")]
    return found


def ivr_modules() -> list[Path]:
    return sorted((PROJECT_ROOT / "ivr").rglob("*.py"))


@pytest.mark.parametrize("planted", [
    "import workers\n",
    "import workers.speech as speech\n",
    "from workers.speech import load_recogniser\n",
    "from workers import recordings\n",
    "import importlib\nimportlib.import_module('workers.speech')\n",
    "from importlib import import_module\nimport_module('workers.recordings')\n",
    "__import__('workers.speech')\n",
    "def f():\n    from workers.recordings import transcribe_recording\n",
])
def test_the_checker_finds_a_planted_import(planted: str) -> None:
    assert workers_imports(planted)


def test_a_job_named_by_a_string_is_not_an_import() -> None:
    source = 'TRANSCRIBE_JOB = "workers.recordings.transcribe_recording"\nqueue.enqueue_call(TRANSCRIBE_JOB)\n'
    assert workers_imports(source) == []
    assert job_names(source) == {"workers.recordings.transcribe_recording"}


def test_the_web_app_modules_are_found() -> None:
    names = {p.relative_to(PROJECT_ROOT).as_posix() for p in ivr_modules()}
    assert {"ivr/core/recordings.py", "ivr/console/listening.py", "ivr/core/audio/disguise.py"} <= names


@pytest.mark.parametrize("path", ivr_modules(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_nothing_in_ivr_imports_the_workers(path: Path) -> None:
    assert workers_imports(path.read_text()) == []


def test_every_job_ivr_enqueues_by_name_exists_in_the_workers() -> None:
    names = set().union(*(job_names(path.read_text()) for path in ivr_modules()))
    assert names, "ivr/ enqueues no job by name: has the naming changed?"
    for name in sorted(names):
        module, _, function = name.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function, None)), f"{name} is not a worker function"


def test_jobs_are_named_queued_and_kept_in_the_jobs_module_only() -> None:
    """One place for job names, retry policies and TTLs (`ivr/core/jobs.py`): a second place
    would let the policies drift apart again (they once kept failed jobs 7 and 30 days)."""
    jobs_module = PROJECT_ROOT / "ivr" / "core" / "jobs.py"
    elsewhere = [p for p in [*ivr_modules(), *sorted((PROJECT_ROOT / "workers").rglob("*.py"))] if p != jobs_module]
    assert job_names(jobs_module.read_text())
    for path in elsewhere:
        source = path.read_text()
        if path.is_relative_to(PROJECT_ROOT / "ivr"):  # (a worker may name its own module: a logger)
            assert job_names(source) == set(), f"{path.name} names a job: queue it through ivr.core.jobs"
        assert job_policies(source) == [], f"{path.name} sets job policies: they live in ivr.core.jobs"


@pytest.mark.parametrize("planted", [
    "Queue('q', connection=c).enqueue_call('workers.x.y')\n",
    "RETRY = Retry(max=3)\n",
    "queue.enqueue_in(delay, f, failure_ttl=60)\n",
    "q.enqueue_call(f, result_ttl=0)\n",
])
def test_the_checker_finds_a_planted_job_policy(planted: str) -> None:
    assert job_policies(planted)
