"""The job layer at scale: ``reka-async batch`` first runs, resumes and exports at 100,000 and
1,000,000 lines, peak RSS and wall of the CLI process alone (issue 31's targets).

Run: ``python -m benchmarks.jobscale`` (about 15 minutes on 2 cores; ``--quick``: 2,000 and
20,000 lines; ``--sizes 100000`` for others). The mock runs in its own process at 0 ms
latency; each CLI run is a fresh process whose peak RSS comes from ``wait4`` (that process
alone). Per step:

* first run: INPUT of N lines -> an empty OUTPUT, concurrency 64;
* resume: 10 new lines appended to INPUT, ``--resume`` (change detection on: the input's
  requests are hashed and compared); the per-record time is (wall - the wall of a 10-line
  first run) / N, the process start and those 10 requests taken out;
* export: OUTPUT -> CSV and -> Parquet.

The projection to 10,000,000 lines: the peak at the largest size plus the measured bytes an
input between the two sizes (``(RSS(big) - RSS(small)) / (big - small)``, temporaries
included since they are peaks) times the lines beyond. With ``--baseline DIR`` (a checkout of
the previous commit), the first run at the smallest size, and the resume of a synthesized
output of that size, are also run with that checkout's package, interleaved with this one,
for the throughput and resume-time ratios. Writes
``benchmarks/results/jobscale.json`` and ``jobscale.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reka_async.testing import MockServerProcess

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TARGET_LINES = 10_000_000
#: Issue 31's targets (MB, and microseconds a record).
TARGETS = {
    "first_run_1m_mb": 150.0,
    "first_run_growth_mb": 32.0,
    "resume_1m_mb": 150.0,
    "resume_us_per_record": 20.0,
    "export_1m_mb": 150.0,
}


def _write_input(path: Path, start: int, stop: int, mode: str = "w") -> None:
    with path.open(mode) as f:
        for i in range(start, stop):
            f.write(json.dumps({"custom_id": f"id-{i:08d}", "prompt": f"Label item {i}."}))
            f.write("\n")


def _run(argv: list[str], cwd: Path) -> dict[str, Any]:
    """Run one CLI process; its wall time, exit status and peak RSS (``wait4``: it alone)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    if proc.returncode not in (0,):
        raise RuntimeError(f"{argv} exited {proc.returncode}: {err[-2000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(peak_kb / 1024, 1)}


def _cli(*args: str) -> list[str]:
    # Run with the checkout as the cwd, which comes first on sys.path: its package is run.
    return [sys.executable, "-m", "reka_async", *args]


def _batch(root: Path, url: str, inp: Path, out: Path, *extra: str) -> dict[str, Any]:
    argv = _cli("batch", str(inp), "-o", str(out), "--base-url", url, "--api-key", "k")
    return _run([*argv, "--concurrency", "64", "--no-progress", *extra], root)


def measure(sizes: list[int], work: Path, url: str, root: Path) -> dict[str, Any]:
    """Every step at every size (see the module docstring)."""
    out: dict[str, Any] = {}
    base_in, base_out = work / "base.jsonl", work / "base.out.jsonl"
    _write_input(base_in, 0, 10)
    out["startup"] = _batch(root, url, base_in, base_out)
    for n in sizes:
        inp, res = work / f"in{n}.jsonl", work / f"out{n}.jsonl"
        _write_input(inp, 0, n)
        step: dict[str, Any] = {"first_run": _batch(root, url, inp, res)}
        step["first_run"]["req_per_s"] = round(n / step["first_run"]["wall_s"], 1)
        _write_input(inp, n, n + 10, mode="a")
        step["resume"] = _batch(root, url, inp, res, "--resume")
        step["resume"]["us_per_record"] = round(
            (step["resume"]["wall_s"] - out["startup"]["wall_s"]) / n * 1e6, 2
        )
        for fmt in ("csv", "parquet"):
            target = work / f"out{n}.{fmt}"
            step[f"export_{fmt}"] = _run(_cli("export", str(res), str(target)), root)
            target.unlink()
        out[str(n)] = step
        print(f"jobscale {n}: {json.dumps(step)}", flush=True)
        inp.unlink()
        res.unlink()
    return out


def synthesize(n: int, inp: Path, out: Path) -> None:
    """An input of ``n`` lines and the output a first run against the mock writes for it
    (the same records, request hashes included), without sending anything."""
    from reka_async._wire.hashing import request_hasher_for
    from reka_async.jobs import prepare_line

    hash_body = request_hasher_for("http://127.0.0.1/v1", "native")
    with inp.open("w") as fi, out.open("w") as fo:
        for i in range(n):
            item = {"custom_id": f"id-{i:08d}", "prompt": f"Label item {i}."}
            fi.write(json.dumps(item) + "\n")
            _, body = prepare_line(dict(item), i, i + 1, model="reka-flash", params={})
            text = "Mock reply to: " + item["prompt"]
            rec = {
                "custom_id": item["custom_id"],
                "line": i + 1,
                "ok": True,
                "response": {
                    "id": f"64a95ca9-e7bc-44ed-8703-{i:012d}",
                    "model": "reka-flash",
                    "text": text,
                    "finish_reason": "stop",
                    "responses": [
                        {
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                },
                "usage": {"input_tokens": 5, "output_tokens": 9},
                "latency_s": 0.0021,
                "attempts": 1,
                "cost_usd": 2.2e-05,
                "request_hash": hash_body(body),
            }
            fo.write(json.dumps(rec, ensure_ascii=False) + "\n")


def measure_synthesized(n: int, work: Path, url: str, root: Path) -> dict[str, Any]:
    """The resume and the exports of a synthesized ``n``-record output (no first run)."""
    base_in, base_out = work / "base.jsonl", work / "base.out.jsonl"
    _write_input(base_in, 0, 10)
    startup = _batch(root, url, base_in, base_out)
    inp, res = work / f"in{n}.jsonl", work / f"out{n}.jsonl"
    started = time.perf_counter()
    synthesize(n, inp, res)
    step: dict[str, Any] = {"synthesized_s": round(time.perf_counter() - started, 1)}
    _write_input(inp, n, n + 10, mode="a")
    step["resume"] = _batch(root, url, inp, res, "--resume")
    step["resume"]["us_per_record"] = round(
        (step["resume"]["wall_s"] - startup["wall_s"]) / n * 1e6, 2
    )
    print(f"jobscale synthesized {n}: {json.dumps(step)}", flush=True)
    for fmt in ("csv", "parquet"):
        target = work / f"out{n}.{fmt}"
        step[f"export_{fmt}"] = _run(_cli("export", str(res), str(target)), root)
        print(f"jobscale synthesized {n}: {json.dumps(step)}", flush=True)
        target.unlink()
    return {"startup": startup, str(n): step}


def project(result: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    """The 10,000,000-line projection from the two largest sizes."""
    if len(sizes) < 2:
        return {}
    small, big = sizes[-2], sizes[-1]
    proj: dict[str, Any] = {}
    for step in ("first_run", "resume", "export_csv", "export_parquet"):
        a = result[str(small)][step]["peak_rss_mb"]
        b = result[str(big)][step]["peak_rss_mb"]
        per_input = max(b - a, 0.0) * 1024 * 1024 / (big - small)
        proj[step] = {
            "bytes_per_input": round(per_input, 1),
            "growth_mb": round(b - a, 1),
            "projected_10m_mb": round(b + per_input * (TARGET_LINES - big) / 1024 / 1024, 1),
        }
    return proj


def baseline_pairs(
    sizes: list[int], work: Path, url: str, root: Path, baseline: Path, pairs: int
) -> dict[str, Any]:
    """First runs at the smallest size with this checkout and ``baseline``, interleaved."""
    n = sizes[0]
    inp = work / "pair.jsonl"
    _write_input(inp, 0, n)
    ratios, walls = [], {"this": [], "baseline": []}
    for i in range(pairs):
        order = [("this", root), ("baseline", baseline)]
        if i % 2:
            order.reverse()
        got = {}
        for name, where in order:
            res = work / f"pair-{name}.jsonl"
            got[name] = _batch(where, url, inp, res)["wall_s"]
            walls[name].append(got[name])
            res.unlink()
        ratios.append(got["baseline"] / got["this"])
    # The resume of a synthesized n-record output with 10 new lines, each run on a copy.
    res = work / "pair.out.jsonl"
    synthesize(n, inp, res)
    _write_input(inp, n, n + 10, mode="a")
    resume_ratios, resume_walls = [], {"this": [], "baseline": []}
    for i in range(pairs):
        order = [("this", root), ("baseline", baseline)]
        if i % 2:
            order.reverse()
        got = {}
        for name, where in order:
            copy = work / f"pair-{name}.jsonl"
            shutil.copyfile(res, copy)
            got[name] = _batch(where, url, inp, copy, "--resume")
            resume_walls[name].append(got[name])
            copy.unlink()
        resume_ratios.append(got["baseline"]["wall_s"] / got["this"]["wall_s"])
    return {
        "lines": n,
        "walls_s": walls,
        "throughput_ratio_this_over_baseline": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "resume_runs": resume_walls,
        "resume_speedup_baseline_wall_over_this": [round(r, 3) for r in resume_ratios],
    }


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Job layer at scale (`python -m benchmarks.jobscale`)",
        "",
        f"Machine: {data['machine']}; load average at start {data['load_start']}, "
        f"at end {data['load_end']}.",
        "",
        "| lines | step | peak RSS MB | wall s | other |",
        "|---|---|---|---|---|",
    ]
    for n in data["sizes"]:
        for step, row in data["result"][str(n)].items():
            other = ", ".join(
                f"{k} {v}" for k, v in row.items() if k not in ("wall_s", "peak_rss_mb")
            )
            lines.append(f"| {n:,} | {step} | {row['peak_rss_mb']} | {row['wall_s']} | {other} |")
    if data["projection"]:
        lines += ["", "| step | bytes an input | projected 10,000,000 lines, MB |", "|---|---|---|"]
        for step, row in data["projection"].items():
            lines.append(f"| {step} | {row['bytes_per_input']} | {row['projected_10m_mb']} |")
    if data.get("baseline"):
        b = data["baseline"]
        lines += [
            "",
            f"Throughput against the previous commit, first run of {b['lines']:,} lines, "
            f"interleaved: this/baseline ratios {b['throughput_ratio_this_over_baseline']} "
            f"(median {b['median_ratio']}).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and write the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobscale")
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 lines")
    parser.add_argument("--sizes", help="comma-separated line counts")
    parser.add_argument("--baseline", type=Path, help="a checkout of the previous commit")
    parser.add_argument("--pairs", type=int, default=3, help="baseline pairs (default 3)")
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument(
        "--synthesized",
        type=int,
        metavar="N",
        help="by hand: the resume and exports of a synthesized N-record output only "
        "(writes jobscale-synthesized-N.json)",
    )
    parser.add_argument("--work", type=Path, help="where the files go (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = (
        [int(x) for x in args.sizes.split(",")]
        if args.sizes
        else [2000, 20000]
        if args.quick
        else [100_000, 1_000_000]
    )
    results = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    results.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="jobscale-", dir=args.work) as tmp,
        MockServerProcess("--latency-ms", "0") as server,
    ):
        work = Path(tmp)
        if args.synthesized:
            got = measure_synthesized(args.synthesized, work, server.base_url, REPO)
            got["load"] = [load_start, os.getloadavg()]
            name = f"jobscale-synthesized-{args.synthesized}.json"
            (results / name).write_text(json.dumps(got, indent=2) + "\n")
            return 0
        result = measure(sizes, work, server.base_url, REPO)
        baseline = (
            baseline_pairs(sizes, work, server.base_url, REPO, args.baseline, args.pairs)
            if args.baseline
            else None
        )
    data = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "load_start": [round(x, 1) for x in load_start],
        "load_end": [round(x, 1) for x in os.getloadavg()],
        "sizes": sizes,
        "result": result,
        "projection": project(result, sizes),
        "baseline": baseline,
        "targets": TARGETS,
    }
    (results / "jobscale.json").write_text(json.dumps(data, indent=2) + "\n")
    (results / "jobscale.md").write_text(_markdown(data))
    print(_markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
