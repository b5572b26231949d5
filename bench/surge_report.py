"""The surge bench's results: the figures, the targets they meet or miss, the table and the plot."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.surge_traffic import Outcome, WebhookTiming
from bench.surge_watch import DepthSample
from ivr.core.tips import READY

WINDOW_SECONDS = 10.0
WEBHOOK_P99_TARGET_MS = 100.0
URGENT_MEDIAN_TARGET_SECONDS = 120.0


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def window_p99s(timings: list[WebhookTiming], start: float, end: float) -> list[tuple[float, float, int]]:
    """(window start s after `start`, p99 ms, requests) for each 10 s window holding a request."""
    windows: dict[int, list[float]] = {}
    for timing in timings:
        if start <= timing.sent <= end:
            windows.setdefault(int((timing.sent - start) // WINDOW_SECONDS), []).append(timing.milliseconds)
    return [(index * WINDOW_SECONDS, percentile(values, 0.99), len(values))
            for index, values in sorted(windows.items())]


def latency_by_path(idle: list[WebhookTiming], surge: list[WebhookTiming]) -> list[tuple[str, str]]:
    """(webhook path, "idle p50 / p99 -> surge p50 / p99 ms") for each path either phase sent."""
    rows = []
    for path in sorted({t.path for t in idle + surge}):
        idle_ms = [t.milliseconds for t in idle if t.path == path]
        surge_ms = [t.milliseconds for t in surge if t.path == path]
        rows.append((path, f"{percentile(idle_ms, 0.5):.1f} / {percentile(idle_ms, 0.99):.1f} -> "
                           f"{percentile(surge_ms, 0.5):.1f} / {percentile(surge_ms, 0.99):.1f}  (n={len(surge_ms)})"))
    return rows


@dataclass(frozen=True)
class Figures:
    """Everything the table and the targets read, worked out once."""

    scale: float
    smoke: bool
    probes: int  # texts sent while the backlog drained, to time the web then too
    workers: int
    calls: int
    texts: int
    idle_p50: float
    idle_p99: float
    by_path: list[tuple[str, str]]
    surge_p50: float
    surge_p99: float
    worst_window_p99: float
    webhook_errors: int
    urgent_delays: list[float]
    other_delays: list[float]
    peak_urgent_depth: int
    peak_other_depth: int
    drain_seconds: float
    peak_rss: dict[str, tuple[int, int]]
    niceness: dict[str, int]
    lost: list[str]
    duplicated: list[str]
    audio_seconds: int
    busy_seconds: float
    load: str

    @property
    def scale_name(self) -> str:
        return "smoke (a few short clips)" if self.smoke else f"{self.scale:g}"

    @property
    def audio_per_wall_second(self) -> float:
        return self.audio_seconds / self.busy_seconds if self.busy_seconds > 0 else float("nan")

    def targets(self) -> list[tuple[str, bool]]:
        urgent_median = statistics.median(self.urgent_delays) if self.urgent_delays else float("nan")
        return [
            (f"webhook p99 < {WEBHOOK_P99_TARGET_MS:.0f} ms in every 10 s window of the surge "
             f"(worst {self.worst_window_p99:.1f} ms)", self.worst_window_p99 < WEBHOOK_P99_TARGET_MS),
            (f"urgent tips: median callback -> transcript < {URGENT_MEDIAN_TARGET_SECONDS:.0f} s "
             f"({urgent_median:.1f} s)", urgent_median < URGENT_MEDIAN_TARGET_SECONDS),
            (f"urgent before the rest (urgent median {urgent_median:.1f} s <= other median "
             f"{statistics.median(self.other_delays) if self.other_delays else float('nan'):.1f} s)",
             not self.other_delays or (bool(self.urgent_delays)
                                       and urgent_median <= statistics.median(self.other_delays))),
            (f"nothing lost ({len(self.lost)})", not self.lost),
            (f"nothing duplicated ({len(self.duplicated)})", not self.duplicated),
        ]


def lost_and_duplicated(outcomes: list[Outcome], finished: dict[str, tuple[float, str]], stored: set[str],
                        parts: dict[str, int], fetches: Counter[str]) -> tuple[list[str], list[str]]:
    """Lost: an answered arrival with no reference heard, no tip, or no transcript (text) in the end.
    Duplicated: one reference heard by two arrivals, a tip with more parts than it was given, or
    one recording fetched from the provider more than once (transcribed twice)."""
    lost, duplicated = [], []
    heard = Counter(o.reference for o in outcomes if o.reference)
    for outcome in outcomes:
        name = f"{outcome.arrival.channel} at {outcome.arrival.at:.1f} s"
        if outcome.error or not outcome.reference:
            lost.append(f"{name}: {outcome.error or 'no reference heard'}")
        elif outcome.reference not in stored:
            lost.append(f"{name}: no tip {outcome.reference}")
        elif finished.get(outcome.reference, (0.0, ""))[1] != READY:
            ended = finished.get(outcome.reference, (0.0, "unfinished"))[1]
            lost.append(f"{name} (clip {outcome.arrival.clip}): tip ended {ended}" if outcome.arrival.channel == "voice"
                        else f"{name}: tip ended {ended}")
        if heard[outcome.reference] > 1:
            duplicated.append(f"{name}: reference {outcome.reference} heard {heard[outcome.reference]} times")
        if parts.get(outcome.reference, 1) > 1:
            duplicated.append(f"{name}: tip {outcome.reference} has {parts[outcome.reference]} parts")
    duplicated += [f"recording {sid[:6]}... fetched {count} times" for sid, count in fetches.items() if count > 1]
    return lost, duplicated


def lost_reasons(lost: list[str]) -> Counter[str]:
    """How many were lost for each reason (the text after the arrival's name)."""
    return Counter(problem.partition(": ")[2] for problem in lost)


def _format_delays(delays: list[float]) -> str:
    if not delays:
        return "-"
    return f"{statistics.median(delays):.1f} / {percentile(delays, 0.95):.1f}  (n={len(delays)})"


def table(figures: Figures) -> str:
    """The results, one figure a line, and PASS/FAIL for each target."""
    rows = [
        ("scale", f"{figures.scale_name}: {figures.calls} calls + {figures.texts} texts, "
                  f"{figures.workers} transcription worker(s); {figures.probes} probe texts while draining"),
        ("load (uptime) at the end", figures.load),
        ("webhook p50 ms: idle / surge (ratio)",
         f"{figures.idle_p50:.1f} / {figures.surge_p50:.1f}  ({figures.surge_p50 / figures.idle_p50:.2f}x)"),
        ("webhook p99 ms: idle / surge (ratio)",
         f"{figures.idle_p99:.1f} / {figures.surge_p99:.1f}  ({figures.surge_p99 / figures.idle_p99:.2f}x)"),
        ("webhook p99 ms, worst 10 s window", f"{figures.worst_window_p99:.1f}"),
        *((f"  {path} ms: idle p50 / p99 -> surge", value) for path, value in figures.by_path),
        ("webhook answers not 2xx", str(figures.webhook_errors)),
        ("urgent: callback -> transcript s, median / p95", _format_delays(figures.urgent_delays)),
        ("other: callback -> transcript s, median / p95", _format_delays(figures.other_delays)),
        ("peak RQ queue depth: urgent / other", f"{figures.peak_urgent_depth} / {figures.peak_other_depth}"),
        ("time to drain (last arrival -> last transcript)", f"{figures.drain_seconds:.0f} s"),
        ("audio transcribed", f"{figures.audio_seconds} s in {figures.busy_seconds:.0f} s of work"),
        ("audio s per wall s: all workers / per worker",
         f"{figures.audio_per_wall_second:.2f} / {figures.audio_per_wall_second / figures.workers:.2f}"),
        *((f"peak RSS per process: {kind} (x{count})", f"{rss / 2**20:.0f} MiB")
          for kind, (rss, count) in figures.peak_rss.items()),
        *((f"niceness: {kind}", str(nice)) for kind, nice in sorted(figures.niceness.items())),
        ("tips lost", str(len(figures.lost))),
        *((f"  of which {why}", str(count)) for why, count in lost_reasons(figures.lost).items()),
        ("tips duplicated", str(len(figures.duplicated))),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"  lost: {problem}" for problem in figures.lost[:5]]
    lines += [f"  duplicated: {problem}" for problem in figures.duplicated[:5]]
    lines.append("")
    lines += [f"{'PASS' if passed else 'FAIL'}  {what}" for what, passed in figures.targets()]
    return "\n".join(lines)


def plot(figures: Figures, depths: list[DepthSample], windows: list[tuple[float, float, int]], start: float,
         last_arrival: float, path: Path) -> Path:
    """Queue depth (urgent and other) and webhook p99 per 10 s window over the surge, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (depth_axes, latency_axes) = plt.subplots(2, 1, sharex=True, figsize=(10, 7))
    times = [sample.at - start for sample in depths]
    depth_axes.plot(times, [s.other for s in depths], label="other tips' recordings", color="tab:blue")
    depth_axes.plot(times, [s.urgent for s in depths], label="urgent tips' recordings", color="tab:red")
    depth_axes.set_ylabel("RQ queue depth (jobs waiting)")
    depth_axes.yaxis.get_major_locator().set_params(integer=True)
    depth_axes.legend(loc="upper right")
    depth_axes.grid(alpha=0.3)
    if windows:  # each window's p99 drawn across its 10 s
        latency_axes.step([w[0] for w in windows] + [windows[-1][0] + WINDOW_SECONDS],
                          [w[1] for w in windows] + [windows[-1][1]], where="post", color="tab:green",
                          label="webhook p99 per 10 s window (calls and texts, then probe texts)")
    latency_axes.axhline(WEBHOOK_P99_TARGET_MS, color="tab:red", linestyle="--", label="target: 100 ms")
    latency_axes.axhline(figures.idle_p99, color="grey", linestyle=":", label=f"idle p99 ({figures.idle_p99:.0f} ms)")
    latency_axes.set_ylabel("webhook p99 (ms)")
    latency_axes.set_xlabel("seconds since the appeal aired")
    latency_axes.set_ylim(bottom=0, top=max(WEBHOOK_P99_TARGET_MS * 1.2, *(w[1] * 1.1 for w in windows)))
    latency_axes.legend(loc="upper right")
    latency_axes.grid(alpha=0.3)
    for axes in (depth_axes, latency_axes):
        axes.axvline(last_arrival - start, color="black", linewidth=0.8)
    depth_axes.annotate("last arrival", (last_arrival - start, 0), xytext=(4, 4), textcoords="offset points")
    figure.suptitle(f"TV-appeal surge at scale {figures.scale_name}: {figures.calls} calls + {figures.texts} texts, "
                    f"{figures.workers} transcription worker(s), drained {figures.drain_seconds:.0f} s "
                    f"after the last arrival")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
