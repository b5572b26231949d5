"""The layers hold: a core with no web in it, workers that never load the web app, no import cycles.

`ivr/core/` is the domain the three doors share (the webhooks, the console, the CLI and
workers). If a core module imported Flask or a door, a worker would load the web app to run
one job and a change to a page could break a job; if a worker imported a door, the same.
An import cycle makes the order modules load in matter, and hides which layer owns what.
These tests parse the source (AST), so they see imports inside functions too, and each
first proves it catches planted violations.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT

CORE = PROJECT_ROOT / "ivr" / "core"
WEB_LIBRARIES = ("flask", "werkzeug", "flask_login", "flask_wtf", "flask_talisman")
# The doors: each builds its own objects from the core; the core and the workers import none.
DOORS = ("ivr.edge", "ivr.voice", "ivr.sms", "ivr.console", "ivr.health", "ivr.current", "ivr.wsgi",
         "ivr.create_app")
GRAPHED = ("ivr", "workers", "config", "dev")
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def imports(source: str, module: str = "", is_package: bool = False) -> list[tuple[int, str, tuple[str, ...]]]:
    """What `source` imports, as (line, dotted module, names imported from it).

    Imports inside functions count (a deferred import is still a dependency); those under
    `if TYPE_CHECKING:` do not (they never run).
    """
    found: list[tuple[int, str, tuple[str, ...]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module, is_package).split(".")
                anchor = ".".join(package[:len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.append((node.lineno, base, tuple(alias.name for alias in node.names if alias.name != "*")))
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            first = node.args[0] if node.args else None
            if called in DYNAMIC_IMPORTS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value, ()))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def _within(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def web_imports(source: str) -> list[str]:
    """Where `source` imports a web library or one of the doors, as 'line N: name'."""
    named = [(line, name) for line, base, names in imports(source)
             for name in (base, *(f"{base}.{n}" for n in names))]  # `from ivr import edge` names ivr.edge
    return sorted({f"line {line}: {name}" for line, name in named
                   if _within(name, WEB_LIBRARIES) or _within(name, DOORS)})


def module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of a project file, and whether it is a package's __init__."""
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the project modules it imports: `from a import b` is a.b when b is a module, else a.

    A module's parent packages are not counted: Python imports them first, but a package
    importing its own modules (an `install` that registers their routes) is no cycle.
    """
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        targets = set()
        for _, base, names in imports(source, module, is_package):
            submodules = {f"{base}.{name}" for name in names if f"{base}.{name}" in sources}
            targets |= submodules
            if base in sources and (not names or len(submodules) < len(names)):
                targets.add(base)
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none (depth-first, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def project_sources() -> dict[str, tuple[str, bool]]:
    sources = {}
    for top in GRAPHED:
        for path in sorted((PROJECT_ROOT / top).rglob("*.py")):
            name, is_package = module_name(path)
            sources[name] = (path.read_text(), is_package)
    return sources


# -- the core imports no web --------------------------------------------------------------

@pytest.mark.parametrize("planted", [
    "from flask import current_app\n",
    "import flask\n",
    "from werkzeug.exceptions import NotFound\n",
    "from flask_login import current_user\n",
    "from ivr.edge import InboundMessage\n",
    "from ivr.voice.script import Script\n",
    "from ivr.sms import line\n",
    "from ivr import console\n",
    "from ivr import create_app\n",
    "from ivr.current import current_core\n",
    "def f():\n    from ivr.console.casework import Casework\n",
    "import importlib\nimportlib.import_module('ivr.sms.line')\n",
])
def test_a_web_import_is_caught(planted: str) -> None:
    assert web_imports(planted), planted


@pytest.mark.parametrize("allowed", [
    "from ivr.core import keys\n",
    "from ivr.core.tips import TipStore\n",
    "import redis\n",
    "from itsdangerous import TimestampSigner\n",
    "from ivr.core.sms_words import clean\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flask import Flask\n",
])
def test_a_core_import_is_not_taken_for_a_web_one(allowed: str) -> None:
    assert web_imports(allowed) == []


def test_the_core_imports_no_web() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert {"tips.py", "vault.py", "accounts.py", "audit.py", "jobs.py", "provider.py"} <= {p.name for p in modules}
    for path in modules:
        assert web_imports(path.read_text()) == [], f"{path.relative_to(PROJECT_ROOT)} imports the web"


def test_the_workers_import_no_web() -> None:
    modules = sorted((PROJECT_ROOT / "workers").rglob("*.py"))
    assert {"context.py", "recordings.py", "clock.py", "run.py"} <= {p.name for p in modules}
    for path in modules:
        assert web_imports(path.read_text()) == [], f"{path.relative_to(PROJECT_ROOT)} imports the web"


def test_the_cli_imports_no_web() -> None:
    for name in ("cli.py", "audit_cli.py"):
        assert web_imports((PROJECT_ROOT / "ivr" / name).read_text()) == [], name


# -- no import cycles -----------------------------------------------------------------------

PLANTED_CYCLES = [
    {"a": ("import b\n", False), "b": ("from a import x\n", False)},
    {"p.one": ("from p.two import f\n", False), "p.two": ("def g():\n    from p.three import h\n", False),
     "p.three": ("import p.one\n", False)},
    {"p": ("def install():\n    from p import routes\n", True), "p.routes": ("from p import install\n", False)},
    {"p.one": ("from . import two\n", False), "p.two": ("from .one import f\n", False)},
]


@pytest.mark.parametrize("planted", PLANTED_CYCLES)
def test_a_planted_cycle_is_found(planted: dict[str, tuple[str, bool]]) -> None:
    cycle = find_cycle(import_graph(planted))
    assert cycle and cycle[0] == cycle[-1] and set(cycle) <= set(planted)


def test_no_cycle_is_claimed_where_there_is_none() -> None:
    acyclic = {"a": ("import b\nimport c\n", False), "b": ("import c\n", False), "c": ("import os\n", False),
               "d": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n", False),
               "a.x": ("import d\n", False)}
    assert find_cycle(import_graph(acyclic)) == []


def test_the_project_has_no_import_cycle() -> None:
    sources = project_sources()
    assert {"ivr.core", "ivr.core.tips", "ivr.console.blueprint", "workers.context",
            "dev.standin.server"} <= set(sources)
    cycle = find_cycle(import_graph(sources))
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_a_worker_or_cli_process_loads_no_web() -> None:
    """What the AST test promises, seen at run time: the modules loaded, not only the ones named."""
    entry_points = ["workers.run", "workers.clock", "workers.recordings", "workers.messages", "workers.sweep",
                    "workers.inbound_sweep", "workers.call_sweep", "workers.stuck", "ivr.cli"]
    code = ("import importlib, json, sys\n"
            f"for name in {entry_points!r}:\n    importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_LIBRARIES!r}"
            f" or m.startswith({DOORS!r}))))\n")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []
