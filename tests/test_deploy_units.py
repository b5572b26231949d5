"""deploy/systemd: each unit parses, runs the Procfile's process as user tipline from
/opt/tipline with its secrets in /etc/tipline/env, and leaves nothing behind when stopped."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT
from ivr.core.recordings import MAX_TRANSCRIPTION_SECONDS

UNITS = PROJECT_ROOT / "deploy" / "systemd"
COMMANDS = {"tipline-web.service": "/opt/tipline/.venv/bin/gunicorn --config config/gunicorn.conf.py ivr.wsgi:app",
            "tipline-worker@.service": "/opt/tipline/.venv/bin/python -m workers.run",
            "tipline-clock.service": "/opt/tipline/.venv/bin/python -m workers.clock"}
SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD|VAULT_KEYS|AUDIT_KEY|REDIS_URL", re.IGNORECASE)


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def test_there_is_a_unit_for_each_production_process() -> None:
    assert sorted(path.name for path in UNITS.glob("*.service")) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_unit_runs_its_process_as_tipline_with_secrets_from_the_environment_file(name: str) -> None:
    service = unit(name)["Service"]
    assert service["ExecStart"] == COMMANDS[name]
    assert (service["User"], service["WorkingDirectory"]) == ("tipline", "/opt/tipline")
    assert service["EnvironmentFile"] == "/etc/tipline/env"
    assert service["Restart"] == "on-failure"
    assert not any(key in ("Environment", "PassEnvironment") for key in service), "settings live in the env file"
    settings = [f"{key}={value}" for section in unit(name).values() for key, value in section.items()
                if key != "EnvironmentFile"]
    assert [line for line in settings if SECRET_NAMES.search(line)] == [], "no secret inline"
    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
                 "ReadWritePaths": "/opt/tipline/var"}
    assert {key: service.get(key) for key in hardening} == hardening
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_web_and_clock_stop_with_their_whole_group() -> None:
    for name in ("tipline-web.service", "tipline-clock.service"):
        assert unit(name)["Service"]["KillMode"] == "control-group"


def test_a_worker_finishes_its_job_and_its_scheduler_dies_with_it() -> None:
    """SIGTERM to the worker alone (RQ's warm shutdown: the horse finishes its job), then
    SIGKILL to whatever is left in the group (the scheduler child): KillMode=mixed."""
    service = unit("tipline-worker@.service")["Service"]
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > MAX_TRANSCRIPTION_SECONDS


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_systemd_analyze_verify_finds_nothing_but_the_missing_install(name: str, tmp_path: Path) -> None:
    """On a build machine /opt/tipline is absent, so the only complaint allowed is that ExecStart's program is."""
    copy = tmp_path / name.replace("@.service", "@1.service")
    copy.write_text((UNITS / name).read_text())
    if name.endswith("@.service"):
        (tmp_path / name).write_text((UNITS / name).read_text())
    try:
        checked = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                                 timeout=30, cwd=tmp_path)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"systemd-analyze cannot run here: {error}")
    complaints = [line for line in (checked.stdout + checked.stderr).splitlines() if line.strip()
                  and "/opt/tipline/.venv/bin/" not in line and "is not executable" not in line]
    if any("Failed to" in line and ("bus" in line.lower() or "manager" in line.lower()) for line in complaints):
        pytest.skip(f"systemd-analyze cannot run here: {complaints[0]}")
    assert complaints == []
