"""The figures of the hostile-input and fault tests, gathered for one closing line.

`make test` ends with one line for this suite (printed by `pytest_terminal_summary` in
conftest.py), e.g.

    hostile input: 10240 fuzzed cases, 0 failures; faults: 3 kinds injected, 0 lost, 0 duplicated

Fuzz tests call `record_fuzz` once per route with the number of cases hypothesis ran and
how many of them broke a promise; fault tests call `record_fault` once per kind of fault
with what they counted. A test records its figures before it asserts, so a failing run
still prints what it saw. The suite runs in one process, so module state is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultFigures:
    """What one kind of injected fault cost: each should be 0."""

    lost: int = 0
    duplicated: int = 0
    deleted_before_durable: int = 0
    left_at_provider: int = 0


@dataclass
class HostileFigures:
    fuzzed: dict[str, int] = field(default_factory=dict)
    fuzz_failures: dict[str, int] = field(default_factory=dict)
    faults: dict[str, FaultFigures] = field(default_factory=dict)


FIGURES = HostileFigures()


def record_fuzz(route: str, cases: int, failures: int = 0) -> None:
    """Add `cases` fuzzed requests to `route` (a method and path, e.g. "POST /sms/incoming")."""
    FIGURES.fuzzed[route] = FIGURES.fuzzed.get(route, 0) + cases
    FIGURES.fuzz_failures[route] = FIGURES.fuzz_failures.get(route, 0) + failures


def record_fault(kind: str, *, lost: int, duplicated: int, deleted_before_durable: int = 0,
                 left_at_provider: int = 0) -> None:
    """What a run with one kind of fault (e.g. "redis SIGKILL") lost, duplicated or left behind."""
    figures = FIGURES.faults.setdefault(kind, FaultFigures())
    figures.lost += lost
    figures.duplicated += duplicated
    figures.deleted_before_durable += deleted_before_durable
    figures.left_at_provider += left_at_provider


def summary_lines() -> list[str]:
    """The closing line, and the per-route and per-fault detail under it (empty when nothing ran)."""
    if not FIGURES.fuzzed and not FIGURES.faults:
        return []
    cases = sum(FIGURES.fuzzed.values())
    failures = sum(FIGURES.fuzz_failures.values())
    faults = FIGURES.faults.values()
    lines = [
        f"hostile input: {cases} fuzzed cases, {failures} failures; "
        f"faults: {len(FIGURES.faults)} kinds injected, {sum(f.lost for f in faults)} lost, "
        f"{sum(f.duplicated for f in faults)} duplicated, "
        f"{sum(f.deleted_before_durable for f in faults)} deleted before durable, "
        f"{sum(f.left_at_provider for f in faults)} left at the provider"
    ]
    lines += [f"  fuzzed {route}: {count} cases, {FIGURES.fuzz_failures[route]} failures"
              for route, count in sorted(FIGURES.fuzzed.items())]
    lines += [f"  fault {kind}: {f.lost} lost, {f.duplicated} duplicated, {f.deleted_before_durable} deleted "
              f"before durable, {f.left_at_provider} left at the provider"
              for kind, f in sorted(FIGURES.faults.items())]
    return lines
