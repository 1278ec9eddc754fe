"""The result JSON speaks vLLM's names (``vllm bench serve --save-result``) for the figures
it shares with it, checked against recorded runs (``tests/bench/data``: a closed-loop sweep
with an SLO and an open loop with bursty arrivals, written by ``reka-async bench --json``
against the mock): vLLM's formulas, computed here from the recorded requests, give the
fields the run wrote and the fields the current code derives from those requests."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from reka_async.bench import SLO, BenchConfig, Sample, summarize_run
from reka_async.bench._vllm import VLLM_FIELDS, vllm_fields

DATA = Path(__file__).parent / "data"
RECORDED = sorted(DATA.glob("recorded_*.json"))
ROOT = Path(__file__).resolve().parents[2]


def _sample(d: dict[str, Any]) -> Sample:
    """A recorded request back as a `Sample` (times in seconds after the step start)."""
    start = d["scheduled_ms"] / 1000.0
    sample = Sample(
        index=d["index"],
        scheduled=start,
        sent=d["sent_ms"] / 1000.0,
        end=start + d["e2e_ms"] / 1000.0,
        input_tokens=d["input_tokens"],
        usage_input_tokens=d["usage_input_tokens"],
        output_tokens=d["output_tokens"],
        answer_events=d["chunks"],
        finish_reason=d["finish_reason"],
    )
    if d["ttft_ms"] is not None:
        times = [start + d["ttft_ms"] / 1000.0]
        for gap in d["itl_ms"]:
            times.append(times[-1] + gap / 1000.0)
        sample.first_token, sample.last_token, sample.token_times = times[0], times[-1], times
    if d["error"] is not None:
        sample.error_type, sample.error = d["error"]["type"], d["error"]["message"]
    return sample


def _numpy_percentile(values: list[float], p: int) -> float:
    # numpy's default (linear) percentile, which vLLM reports: the "inclusive" quantiles.
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _vllm_formulas(run: dict[str, Any], slo: dict[str, float] | None) -> dict[str, Any]:
    """vLLM's ``calculate_metrics`` and ``process_one_metric``, over the recorded requests."""
    samples = run["samples"]
    ok = [s for s in samples if s["ok"]]
    duration = max(s["scheduled_ms"] + s["e2e_ms"] for s in samples) / 1000.0
    total_in = sum(s["input_tokens"] for s in ok)
    total_out = sum(s["output_tokens"] for s in ok)
    expected: dict[str, Any] = {
        "duration": duration,
        "completed": len(ok),
        "failed": len(samples) - len(ok),
        "num_prompts": len(samples),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration,
        "output_throughput": total_out / duration,
        "total_token_throughput": (total_in + total_out) / duration,
    }
    if slo is not None:
        good = [
            s
            for s in ok
            if s["ttft_ms"] <= slo.get("ttft_ms", math.inf)
            and s["e2e_ms"] <= slo.get("e2e_ms", math.inf)
        ]
        expected["request_goodput"] = len(good) / duration
    values = {
        "ttft": [s["ttft_ms"] for s in ok],
        "tpot": [s["tpot_ms"] for s in ok if s["tpot_ms"] is not None],
        "itl": [gap for s in ok for gap in s["itl_ms"]],
        "e2el": [s["e2e_ms"] for s in ok],
    }
    for name, xs in values.items():
        expected[f"mean_{name}_ms"] = statistics.fmean(xs)
        expected[f"median_{name}_ms"] = statistics.median(xs)
        expected[f"std_{name}_ms"] = statistics.pstdev(xs)  # numpy's std: ddof=0
        for p in (90, 95, 99):
            expected[f"p{p}_{name}_ms"] = _numpy_percentile(xs, p)
    return expected


def _close(got: Any, want: Any, key: str) -> None:
    # The recorded requests are rounded to 0.1 us: the figures agree to about that.
    assert got == pytest.approx(want, rel=1e-4, abs=2e-3), key


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_the_vllm_fields_follow_vllm_s_formulas_on_a_recorded_run(path: Path) -> None:
    data = json.loads(path.read_text())
    cfg = data["config"]
    slo_ms = cfg["slo"]
    slo = None if slo_ms is None else SLO(**{f"{k[:-3]}_s": v / 1000.0 for k, v in slo_ms.items()})
    config = BenchConfig(
        stream=cfg["stream"],
        **({"rate": cfg["loads"]} if cfg["load"] == "rate" else {"concurrency": cfg["loads"]}),
        **({"arrivals": cfg["arrivals"]} if cfg["arrivals"] else {}),
        **({"burstiness": cfg["burstiness"]} if cfg["burstiness"] else {}),
        max_concurrency=cfg["max_concurrency"],
        slo=slo,
    )
    for run in data["runs"]:
        expected = _vllm_formulas(run, slo_ms)
        load = run[cfg["load"]]
        rebuilt = summarize_run(
            [_sample(s) for s in run["samples"]],
            load_kind=cfg["load"],
            load=load,
            origin=0.0,
            arrivals=run["arrivals"],
            slo=slo,
        )
        derived = vllm_fields(rebuilt, config)
        assert set(derived) == set(VLLM_FIELDS)
        for key, want in expected.items():
            _close(run[key], want, f"{path.stem} {key} (recorded)")
            _close(derived[key], want, f"{path.stem} {key} (derived)")
        if cfg["load"] == "rate":
            assert (run["request_rate"], run["burstiness"]) == (load, cfg["burstiness"])
            assert run["max_concurrency"] == cfg["max_concurrency"]
        else:
            assert (run["request_rate"], run["max_concurrency"]) == (None, load)
        if slo_ms is None:
            assert run["request_goodput"] is None


def test_the_recordings_cover_goodput_and_bursty_arrivals() -> None:
    configs = [json.loads(p.read_text())["config"] for p in RECORDED]
    assert any(c["slo"] for c in configs)
    assert any(c["load"] == "rate" and c["burstiness"] not in (None, 1.0) for c in configs)


def test_the_bench_guide_maps_every_vllm_field() -> None:
    text = (ROOT / "docs" / "guides" / "bench.md").read_text(encoding="utf-8")
    table = text[text.index("| vLLM `--save-result` field") :]
    table = table[: table.index("\n\n")]
    assert [name for name in VLLM_FIELDS if f"`{name}`" not in table] == []
