"""`BenchReport`: the figures of a run as a terminal table and as JSON.

The JSON file (``write_json``) is meant for scripts and other tools; its shape is stable:
``{"config": {...}, "environment": {...}, "runs": [{"concurrency" or "rate",
"requests_per_s", "output_tokens_per_s", "ttft_ms": {"mean", "p50", "p90", "p95", "p99",
"max", "min", "std", "n"}, "tpot_ms": {...}, "itl_ms": {...}, "e2e_ms": {...},
"errors": {...}, ..., "samples": [...]}], "saturation": {...} | null, "warnings": [...]}``.
Each run also carries the field names of ``vllm bench serve --save-result`` for the same
figures (``request_throughput``, ``mean_ttft_ms``, ...: ``_vllm.VLLM_FIELDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import attrs

from .._files import real_path, temp_beside
from .._version import __version__
from ._config import BenchConfig
from ._metrics import RunResult, Saturation
from ._stats import Summary
from ._vllm import vllm_fields

__all__ = ["BenchReport", "environment", "report_warnings"]


def environment(started: float) -> dict[str, Any]:
    """Where the run ran: versions, the machine's CPU count, the event loop, the start time."""
    loop = type(asyncio.get_running_loop())
    return {
        "reka_async": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "event_loop": f"{loop.__module__}.{loop.__qualname__}",
        "started_at": _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(),
    }


def report_warnings(runs: Sequence[RunResult]) -> tuple[str, ...]:
    """What a reader must know about the figures: a client-bound step, failed requests, a
    sweep whose steps are too short for their throughput to mean much."""
    notes = []
    bound = [r for r in runs if r.client.bottleneck]
    if bound:
        first = bound[0]
        notes.append(
            f"the client, not the server, may be the bottleneck from {first.label} on "
            f"({'; '.join(first.client.reasons)}): the latencies of "
            f"{', '.join(r.label for r in bound)} include the client's own delay"
        )
    for r in runs:
        if r.failed:
            kinds = ", ".join(f"{kind} {count}" for kind, count in r.errors.items())
            notes.append(f"{r.label}: {r.failed} of {r.num_requests} requests failed ({kinds})")
    short = [r for r in runs if r.load_kind == "concurrency" and r.num_requests < 10 * r.load]
    if len(runs) > 1 and short:
        notes.append(
            f"{', '.join(r.label for r in short)}: fewer than 10 requests per slot, so the "
            f"ramp-up and the drain weigh on the throughput the saturation rule compares; "
            f"give --num-requests at least {10 * int(max(r.load for r in short))}"
        )
    return tuple(notes)


def _replace(path: str | os.PathLike[str], write: Callable[[TextIO], None]) -> None:
    """``write`` into a temporary file beside ``path``, then rename it over ``path``."""
    # Through a link to the real file; the temporary name is unpredictable (no planted
    # link can catch it) and gets the mode a plain open would give.
    target = real_path(os.fspath(path))
    fd, temporary = temp_beside(target, "tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _p(summary: Summary | None, key: str) -> float | None:
    return None if summary is None else float(getattr(summary, key))


@attrs.frozen(kw_only=True)
class BenchReport:
    """The result of `run`.

    Attributes:
        config: What ran.
        runs: One `RunResult` per load step, in ascending load.
        saturation: Where the sweep saturated (None for a single step).
        environment: Versions, machine and start time.
        warnings: Client-bound steps and failed requests, in words.
        wall_s: The whole run's wall time, warm-up included.
    """

    config: BenchConfig
    runs: tuple[RunResult, ...]
    saturation: Saturation | None
    environment: dict[str, Any]
    warnings: tuple[str, ...] = ()
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every request of every step succeeded."""
        return all(r.failed == 0 for r in self.runs)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        """The JSON form (see the module docstring); ``samples=False`` leaves them out."""
        return {
            "config": self.config.to_dict(),
            "environment": self.environment,
            # Beside our fields, vLLM's names for the same figures (``_vllm``).
            "runs": [
                {**r.to_dict(samples=samples), **vllm_fields(r, self.config)} for r in self.runs
            ],
            "saturation": None if self.saturation is None else self.saturation.to_dict(),
            "warnings": list(self.warnings),
            "wall_s": self.wall_s,
        }

    def write_json(self, path: str | os.PathLike[str], *, samples: bool = True) -> None:
        """Write `to_dict` as JSON (to a temporary file renamed over ``path``).

        Raises:
            OSError: The file cannot be written.
        """

        def write(f: TextIO) -> None:
            json.dump(self.to_dict(samples=samples), f, indent=1, default=str)
            f.write("\n")

        _replace(path, write)

    def request_records(self) -> Iterator[dict[str, Any]]:
        """One record per measured request, step by step: ``{"step", "concurrency" or
        "rate", **Sample.to_dict}`` (timings in ms from the step's start, TTFT, TPOT, the
        ITL list, tokens, ``chunks``, ``finish_reason``, ``error``)."""
        for number, r in enumerate(self.runs, 1):
            load: float = int(r.load) if r.load_kind == "concurrency" else r.load
            for sample in r.samples:
                yield {"step": number, r.load_kind: load, **sample.to_dict(r.origin)}

    def write_requests(self, path: str | os.PathLike[str]) -> None:
        """Write `request_records` as JSONL, a request a line (as `write_json` writes).

        Raises:
            OSError: The file cannot be written.
        """

        def write(f: TextIO) -> None:
            for record in self.request_records():
                f.write(json.dumps(record, default=str) + "\n")

        _replace(path, write)

    def table(self) -> str:
        """A readable table of the steps (latencies in milliseconds), then the saturation."""
        config = self.config
        mode = "streaming" if config.stream else "non-streaming"
        head = (
            f"{config.model} at {config.base_url or 'the default base URL'} "
            f"({config.api}, {mode}), "
            + (
                f"{config.num_requests} requests per step"
                if config.duration_s is None
                else f"{config.duration_s:g} s per step"
            )
        )
        columns: list[tuple[str, list[str]]] = []

        def column(title: str, cells: list[str]) -> None:
            columns.append((title, cells))

        runs = self.runs
        kind = config.load_kind
        column(kind, [f"{r.load:g}" + ("/s" if kind == "rate" else "") for r in runs])
        column("ok", [str(r.ok) for r in runs])
        column("fail", [str(r.failed) for r in runs])
        column("req/s", [_fmt(r.requests_per_s, 2) for r in runs])
        column("out tok/s", [_fmt(r.output_tokens_per_s) for r in runs])
        if config.stream:
            column("TTFT p50", [_fmt(_p(r.ttft_ms, "p50")) for r in runs])
            column("TTFT p99", [_fmt(_p(r.ttft_ms, "p99")) for r in runs])
            if any(r.ttft_reasoning_ms is not None for r in runs):
                column("reasoning TTFT p50", [_fmt(_p(r.ttft_reasoning_ms, "p50")) for r in runs])
            column("TPOT p50", [_fmt(_p(r.tpot_ms, "p50"), 2) for r in runs])
            column("ITL p50", [_fmt(_p(r.itl_ms, "p50"), 2) for r in runs])
            column("ITL p99", [_fmt(_p(r.itl_ms, "p99"), 2) for r in runs])
        column("E2E p50", [_fmt(_p(r.e2e_ms, "p50")) for r in runs])
        column("E2E p99", [_fmt(_p(r.e2e_ms, "p99")) for r in runs])
        if config.slo is not None:
            column(
                "goodput/s",
                [_fmt(None if r.goodput is None else r.goodput.requests_per_s, 2) for r in runs],
            )
        if kind == "rate":
            column("lag p99", [_fmt(_p(r.schedule_lag_ms, "p99"), 2) for r in runs])
        widths = [max(len(title), *(len(c) for c in cells)) for title, cells in columns]
        lines = [head, "  ".join(t.rjust(w) for (t, _), w in zip(columns, widths, strict=True))]
        for i in range(len(runs)):
            lines.append(
                "  ".join(cells[i].rjust(w) for (_, cells), w in zip(columns, widths, strict=True))
            )
        slo = f"; goodput under the SLO {config.slo}" if config.slo is not None else ""
        lines.append(f"(latencies in ms{slo})")
        sat = self.saturation
        if sat is not None:
            unit = "/s" if kind == "rate" else ""
            if sat.found and sat.throughput_gain is not None and sat.latency_gain is not None:
                lines.append(
                    f"saturation: at {kind} {sat.load:g}{unit} (at {sat.first_saturated:g}{unit}"
                    f" throughput rose {sat.throughput_gain:+.1%} while p50 e2e rose "
                    f"{sat.latency_gain:+.1%})"
                )
            elif sat.found:
                lines.append(
                    f"saturation: at {kind} {sat.load:g}{unit} (no request succeeded at "
                    f"{sat.first_saturated:g}{unit})"
                )
            else:
                lines.append(f"saturation: not reached up to {kind} {runs[-1].load:g}{unit}")
        return "\n".join(lines)
