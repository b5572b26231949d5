"""Promise 1, kept by a test: only the edge reads the raw request.

The voice and SMS webhooks, the workers and the audio code they share with the console
(ivr/core/audio) must not touch `flask.request` (its form, values, args, data, headers...).
This test parses their source and fails on any import of `request` from flask, any
`flask.request` attribute, or any use of werkzeug's request objects. The checker is
shown to catch a planted violation first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT

GUARDED = ["ivr/voice", "ivr/sms", "ivr/core/recordings.py", "ivr/core/call_state.py", "ivr/core/audio", "workers"]
FORBIDDEN_NAMES = {"request", "_request_ctx_stack", "request_ctx"}


def raw_request_uses(source: str) -> list[str]:
    """Ways `source` could reach the raw request, as 'line N: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("flask", "werkzeug"):
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES or alias.name in ("Request", "globals") or alias.name == "*":
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(("werkzeug", "flask.globals")):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def guarded_files() -> list[Path]:
    files = []
    for entry in GUARDED:
        path = PROJECT_ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else ([path] if path.exists() else [])
    return files


@pytest.mark.parametrize("planted", [
    "from flask import request\n",
    "from flask import Blueprint, request as r\n",
    "import flask\nx = flask.request.form\n",
    "from werkzeug.wrappers import Request\n",
    "from flask.globals import request\n",
])
def test_the_checker_finds_a_planted_violation(planted: str) -> None:
    assert raw_request_uses(planted)


def test_the_guarded_modules_exist() -> None:
    names = {p.relative_to(PROJECT_ROOT).as_posix() for p in guarded_files()}
    assert {"ivr/voice/routes.py", "ivr/core/audio/disguise.py", "workers/recordings.py"} <= names


@pytest.mark.parametrize("path", guarded_files(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_no_webhook_or_worker_module_reads_the_raw_request(path: Path) -> None:
    assert raw_request_uses(path.read_text()) == []
