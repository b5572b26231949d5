"""The first hour with `make run`: a second terminal finds it, `tipline --help` explains every
command, and Ctrl-C typed in its terminal stops everything cleanly, make included."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import stat
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, Settings
from dev.processes import free_port, process_environment, wait_for_health
from ivr import cli

TIPLINE = str(Path(sys.executable).parent / "tipline")


def second_terminal(command: list[str], var: Path) -> subprocess.CompletedProcess:
    """`command` typed in another terminal: no PORT, no PUBLIC_BASE_URL, no TWILIO_API_BASE."""
    env = process_environment({"TIPLINE_VAR_DIR": str(var)})
    env.pop("TWILIO_API_BASE", None)
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


class Terminal:
    """A command run in a terminal of its own (a pty it controls), as a person types it: what
    it prints is read as it comes, and Ctrl-C is the byte the keyboard sends."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._master, follower = pty.openpty()
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=follower, stdout=follower,
                                        stderr=follower, start_new_session=True,
                                        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(follower)
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not chunk:
                return
            self._output += chunk

    def press_ctrl_c(self) -> None:
        os.write(self._master, b"\x03")

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        os.close(self._master)
        return code

    @property
    def output(self) -> str:
        return self._output.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.slow
def test_a_second_terminal_reaches_make_run_on_its_port_and_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    port, var = free_port(), tmp_path / "var"
    terminal = Terminal(["make", "--no-print-directory", "run"],
                        process_environment({"PORT": str(port), "TIPLINE_VAR_DIR": str(var)}))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base)
        run_file = var / "run.json"
        assert stat.S_IMODE(run_file.stat().st_mode) == 0o600
        assert json.loads(run_file.read_text())["PUBLIC_BASE_URL"] == base

        webhook = second_terminal([sys.executable, "-m", "dev.webhook", "/voice/incoming"], var)
        assert webhook.returncode == 0 and "HTTP 200" in webhook.stdout, webhook.stderr
        made = second_terminal([TIPLINE, "handler", "add", "--role", "admin", "first"], var)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().splitlines()[-1].startswith(f"{base}/console/enrol/")
        assert (var / "gunicorn.ctl").exists(), "gunicorn's control socket lives under var/"
    finally:
        terminal.press_ctrl_c()
        code = terminal.wait(timeout=30)
    log = terminal.output
    assert code == 0 and "Interrupt" not in log, log[-3000:]  # make too: not "make: *** [run] Interrupt"
    assert "Traceback" not in log and "SIGKILL" not in log, log[-3000:]
    # Redis shut down last: the web app's workers and the RQ worker were done with it. (The
    # gunicorn master holds no Redis connection: its own last line may come after Redis's.)
    redis_down = log.index("User requested shutdown")
    assert log.rindex("Worker exiting") < redis_down and log.index("unsubscribing from channel") < redis_down
    assert "Shutting down: Master" in log
    assert not (var / "run.json").exists()

    gone = second_terminal([sys.executable, "-m", "dev.webhook", "/voice/incoming"], var)
    assert gone.returncode == 3 and "Traceback" not in gone.stderr
    assert "nothing answers at http://127.0.0.1:5000" in gone.stderr


def test_a_run_file_left_by_a_make_run_that_died_is_ignored(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    alive = {"PORT": "43619", "PUBLIC_BASE_URL": "http://127.0.0.1:43619", "TWILIO_API_BASE": "http://127.0.0.1:43620"}
    without = {"TIPLINE_VAR_DIR": str(var)}  # a second terminal: nothing else set

    (var / "run.json").write_text(json.dumps({"pid": int(dead.stdout), **alive}))
    assert Settings.from_env(without).public_base_url == "http://127.0.0.1:5000"

    (var / "run.json").write_text(json.dumps({"pid": os.getpid(), **alive}))
    settings = Settings.from_env(without)
    assert (settings.port, settings.public_base_url, settings.twilio_api_base) == (
        43619, "http://127.0.0.1:43619", "http://127.0.0.1:43620")
    # What the environment says wins.
    assert Settings.from_env({**without, "PORT": "8000"}).public_base_url == "http://127.0.0.1:8000"


def test_tipline_help_lists_every_command_and_each_command_shows_an_example(capsys) -> None:
    listed = subprocess.run([TIPLINE, "--help"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0
    # Each listed line: the command in a 32-character column (one word or two after `tipline`), then its help.
    lines = [line for line in listed.stdout.splitlines() if line.startswith("  tipline ")]
    commands = [((*line[2:34].split()[1:], "")[:2]) for line in lines]
    assert {topic for topic, _ in commands} == {"handler", "audit", "retention", "keys", "secret", "backup",
                                                "provider", "health"}
    assert len(commands) == len(cli.EXAMPLES)
    for line in lines:
        assert line[34:].strip(), f"no one-line help: {line}"

    for topic, action in commands:
        for argv in ([topic, "--help"], [topic, action, "--help"] if action else [topic, "--help"]):
            with pytest.raises(SystemExit) as exited:
                cli.main(argv)
            shown = capsys.readouterr().out
            assert exited.value.code == 0 and "Example" in shown and cli.EXAMPLES[(topic, action)] in shown, argv
