"""The job layer at scale: ``reka-async batch`` first runs, resumes and exports at 100,000 and
1,000,000 lines, peak RSS and wall of the CLI process alone (issue 31's targets).

Run: ``python -m benchmarks.jobscale`` (about 15 minutes on 2 cores; ``--quick``: 2,000 and
20,000 lines; ``--sizes 100000`` for others). The mock runs in its own process at 0 ms
latency; each CLI run is a fresh process whose peak RSS comes from ``wait4`` (that process
alone). Per step:

* first run: INPUT of N lines -> an empty OUTPUT, concurrency 64;
* resume: 10 new lines appended to INPUT, ``--resume`` (change detection on: each input
  line is compared with its record); the per-record time is (wall - the wall of a 10-line
  first run) / N, the process start and those 10 requests taken out, and the same of the
  CPU time (user + system, from ``wait4``: the CLI process alone), which the other work on
  a shared machine moves far less than the wall;
* export: OUTPUT -> CSV and -> Parquet.

The projection to 10,000,000 lines: the peak at the largest size plus the measured bytes an
input between the two sizes (``(RSS(big) - RSS(small)) / (big - small)``, temporaries
included since they are peaks) times the lines beyond. With ``--baseline DIR`` (a checkout of
the previous commit), the first run at the smallest size, and the resume of a synthesized
output of that size, are also run with that checkout's package, interleaved with this one,
for the throughput and resume-time ratios. Writes
``benchmarks/results/jobscale.json`` and ``jobscale.md``.

By hand: ``--resume-pairs N --baseline DIR`` (only the paired resume of an N-record output,
each checkout resuming the output its own first run would write: ``jobscale-resume-pairs.json``),
``--fast-paths N`` (in this process, interleaved, CPU a record of the resume's fast paths
against its general ones: ``jobscale-fast-paths.json``) and ``--synthesized N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    """Run one CLI process; its wall and CPU time and peak RSS (``wait4``: it alone)."""
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
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def _per_record(run: dict[str, Any], startup: dict[str, Any], n: int) -> None:
    """Add the microseconds a record of a resume, wall and CPU, the 10-line run taken out."""
    run["us_per_record"] = round((run["wall_s"] - startup["wall_s"]) / n * 1e6, 2)
    run["cpu_us_per_record"] = round((run["cpu_s"] - startup["cpu_s"]) / n * 1e6, 2)


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
        _per_record(step["resume"], out["startup"], n)
        for fmt in ("csv", "parquet"):
            target = work / f"out{n}.{fmt}"
            step[f"export_{fmt}"] = _run(_cli("export", str(res), str(target)), root)
            target.unlink()
        out[str(n)] = step
        print(f"jobscale {n}: {json.dumps(step)}", flush=True)
        inp.unlink()
        res.unlink()
    return out


def synthesize(n: int, inp: Path, out: Path, *, input_hashes: bool = True) -> None:
    """An input of ``n`` lines and the output a first run against the mock writes for it
    (the same records, request and input hashes included), without sending anything.
    ``input_hashes=False``: records as written before they stored the input's hash."""
    from reka_async._wire.hashing import request_hasher_for
    from reka_async.jobs import input_hasher, prepare_line

    url = "http://127.0.0.1/v1"
    hash_body = request_hasher_for(url, "native")
    hash_input = input_hasher(
        model="reka-flash", params={}, system=None, input_format="jsonl", base_url=url, api="native"
    )
    assert hash_input is not None
    with inp.open("w") as fi, out.open("w") as fo:
        for i in range(n):
            item = {"custom_id": f"id-{i:08d}", "prompt": f"Label item {i}."}
            line = json.dumps(item)
            fi.write(line + "\n")
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
            if input_hashes:
                rec["input_hash"] = hash_input(line.encode())
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
    _per_record(step["resume"], startup, n)
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


def _synthesize_in(where: Path, n: int, inp: Path, out: Path) -> None:
    """`synthesize` as the checkout ``where`` does it: the output its own first run writes."""
    code = (
        "import sys; from pathlib import Path; from benchmarks.jobscale import synthesize; "
        "synthesize(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))"
    )
    subprocess.run([sys.executable, "-c", code, str(n), str(inp), str(out)], cwd=where, check=True)


def resume_pairs(
    n: int, work: Path, url: str, root: Path, baseline: Path, pairs: int
) -> dict[str, Any]:
    """The resume of an ``n``-record output with 10 new lines, this checkout and
    ``baseline`` alternately (the order flips every pair), each on a copy of the output its
    own first run writes; the ratios of their wall and CPU times."""
    outputs = {}
    inputs = {}
    for name, where in (("this", root), ("baseline", baseline)):
        inputs[name], outputs[name] = work / f"rp-{name}.jsonl", work / f"rp-{name}.out.jsonl"
        _synthesize_in(where, n, inputs[name], outputs[name])
        _write_input(inputs[name], n, n + 10, mode="a")
    startup = {}
    base_in = work / "rp-base.jsonl"
    _write_input(base_in, 0, 10)
    for name, where in (("this", root), ("baseline", baseline)):
        startup[name] = _batch(where, url, base_in, work / f"rp-base-{name}.out.jsonl")
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    wall_ratios, cpu_ratios = [], []
    for i in range(pairs):
        order = [("this", root), ("baseline", baseline)]
        if i % 2:
            order.reverse()
        got = {}
        for name, where in order:
            copy = work / f"rp-{name}-copy.jsonl"
            shutil.copyfile(outputs[name], copy)
            got[name] = _batch(where, url, inputs[name], copy, "--resume")
            _per_record(got[name], startup[name], n)
            runs[name].append(got[name])
            copy.unlink()
        wall_ratios.append(got["baseline"]["wall_s"] / got["this"]["wall_s"])
        cpu_ratios.append(got["baseline"]["cpu_s"] / got["this"]["cpu_s"])
    for name in outputs:
        outputs[name].unlink()
        inputs[name].unlink()
    return {
        "lines": n,
        "startup": startup,
        "runs": runs,
        "baseline_over_this_wall": [round(r, 3) for r in wall_ratios],
        "baseline_over_this_cpu": [round(r, 3) for r in cpu_ratios],
        "median_wall": round(statistics.median(wall_ratios), 3),
        "median_cpu": round(statistics.median(cpu_ratios), 3),
    }


def baseline_pairs(
    sizes: list[int], work: Path, url: str, root: Path, baseline: Path, pairs: int
) -> dict[str, Any]:
    """First runs at the smallest size with this checkout and ``baseline``, interleaved,
    then their resumes (`resume_pairs`)."""
    n = sizes[0]
    inp = work / "pair.jsonl"
    _write_input(inp, 0, n)
    ratios, cpu_ratios = [], []
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    for i in range(pairs):
        order = [("this", root), ("baseline", baseline)]
        if i % 2:
            order.reverse()
        got = {}
        for name, where in order:
            res = work / f"pair-{name}.jsonl"
            got[name] = _batch(where, url, inp, res)
            runs[name].append(got[name])
            res.unlink()
        ratios.append(got["baseline"]["wall_s"] / got["this"]["wall_s"])
        cpu_ratios.append(got["baseline"]["cpu_s"] / got["this"]["cpu_s"])
    inp.unlink()
    return {
        "lines": n,
        "runs": runs,
        "throughput_ratio_this_over_baseline": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "cpu_ratio_baseline_over_this": [round(r, 3) for r in cpu_ratios],
        "resume": resume_pairs(n, work, url, root, baseline, pairs),
    }


def fast_paths(n: int, work: Path, rounds: int) -> dict[str, Any]:
    """CPU a record, in this process, of each of the resume's steps with its fast path and
    with its general path, interleaved (``rounds`` rounds, the order rotating each round):

    * the scan of the output: ``_scan`` with and without the whole-line match;
    * the check of the input: the skip by input hash (no parse), the general path comparing
      input hashes (each line parsed), and the general path on records written without
      input hashes (each line parsed, its request built and hashed: the fallback, and what
      every resume did before).
    """
    from reka_async import AsyncClient
    from reka_async.jobs import JobInput, scan_output
    from reka_async.jobs._resume import _new, _scan
    from reka_async.jobs._run import Job

    inp, out = work / "fp.jsonl", work / "fp.out.jsonl"
    old_in, old_out = work / "fp-old.jsonl", work / "fp-old.out.jsonl"
    synthesize(n, inp, out)
    synthesize(n, old_in, old_out, input_hashes=False)

    def scan(fast: bool) -> Callable[[], None]:
        def run() -> None:
            with out.open("r+b") as f:
                resumed = _new(f)
                _scan(f, resumed, fast=fast)
            assert resumed.ok_count == n

        return run

    async def job() -> Job:
        async with AsyncClient("k", "http://127.0.0.1/v1") as client:
            return Job(client, str(inp), str(out), resume=True)

    the_job = asyncio.run(job())
    done = {"new": scan_output(str(out)), "old": scan_output(str(old_out))}

    def check(which: str, path: Path, *, skip: bool) -> Callable[[], None]:
        def run() -> None:
            source = JobInput(
                done[which],
                hash_line=the_job.hash_line,
                hash_input=the_job.hash_input,
                expected=n,
            )
            if not skip:
                source._skipper = lambda met: None  # type: ignore[method-assign]
            fd = os.open(path, os.O_RDONLY)
            try:
                asyncio.run(source.check(fd))
            finally:
                os.close(fd)
            assert source.skipped == n

        return run

    cases = {
        "scan, whole-line match": scan(True),
        "scan, each line by _read": scan(False),
        "check, skip by input hash": check("new", inp, skip=True),
        "check, parse and compare input hashes": check("new", inp, skip=False),
        "check, older records: build and hash each request": check("old", old_in, skip=False),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.process_time()
            cases[name]()
            times[name].append((time.process_time() - started) / n * 1e6)
    for path in (inp, out, old_in, old_out):
        path.unlink()
    return {
        "records": n,
        "rounds": rounds,
        "cpu_us_per_record": {name: [round(t, 3) for t in ts] for name, ts in times.items()},
        "median": {name: round(statistics.median(ts), 3) for name, ts in times.items()},
    }


def _verdicts(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each target of the issue, its goal and what this run measured."""
    sizes = data["sizes"]
    big = data["result"][str(sizes[-1])]
    out = [
        ("first run, peak RSS", "<= 150 MB", f"{big['first_run']['peak_rss_mb']} MB"),
        ("`--resume`, peak RSS", "<= 150 MB", f"{big['resume']['peak_rss_mb']} MB"),
        (
            "`--resume`, time a record",
            "<= 20 µs",
            f"{big['resume']['cpu_us_per_record']} µs CPU, {big['resume']['us_per_record']} "
            f"µs wall",
        ),
        (
            "export CSV / Parquet, peak RSS",
            "<= 150 MB",
            f"{big['export_csv']['peak_rss_mb']} / {big['export_parquet']['peak_rss_mb']} MB",
        ),
    ]
    if len(sizes) > 1:
        growth = data["projection"]["first_run"]["growth_mb"]
        out.insert(1, ("first run, RSS(big) - RSS(small)", "<= 32 MB", f"{growth} MB"))
    return out


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Job layer at scale (`python -m benchmarks.jobscale`)",
        "",
        f"Machine: {data['machine']}; load average at start {data['load_start']}, "
        f"at end {data['load_end']}.",
        "",
        f"Targets at {data['sizes'][-1]:,} lines:",
        "",
        "| target | goal | measured |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in _verdicts(data)),
        "",
        "| lines | step | peak RSS MB | wall s | CPU s | other |",
        "|---|---|---|---|---|---|",
    ]
    for n in data["sizes"]:
        for step, row in data["result"][str(n)].items():
            other = ", ".join(
                f"{k} {v}" for k, v in row.items() if k not in ("wall_s", "cpu_s", "peak_rss_mb")
            )
            lines.append(
                f"| {n:,} | {step} | {row['peak_rss_mb']} | {row['wall_s']} | "
                f"{row.get('cpu_s', '')} | {other} |"
            )
    if data["projection"]:
        lines += ["", "| step | bytes an input | projected 10,000,000 lines, MB |", "|---|---|---|"]
        for step, row in data["projection"].items():
            lines.append(f"| {step} | {row['bytes_per_input']} | {row['projected_10m_mb']} |")
    if data.get("baseline"):
        b = data["baseline"]
        r = b["resume"]
        lines += [
            "",
            f"Against the previous commit, interleaved: first run of {b['lines']:,} lines, "
            f"this/baseline throughput {b['throughput_ratio_this_over_baseline']} (median "
            f"{b['median_ratio']}); baseline/this CPU {b['cpu_ratio_baseline_over_this']}. "
            f"Resume of {r['lines']:,} records: baseline/this wall {r['baseline_over_this_wall']} "
            f"(median {r['median_wall']}), CPU {r['baseline_over_this_cpu']} (median "
            f"{r['median_cpu']}).",
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
    parser.add_argument(
        "--resume-pairs",
        type=int,
        metavar="N",
        help="by hand, with --baseline: only the paired resume of an N-record output "
        "(--pairs pairs; writes jobscale-resume-pairs.json)",
    )
    parser.add_argument(
        "--fast-paths",
        type=int,
        metavar="N",
        help="by hand: CPU a record of the resume's fast and general paths on N records, in "
        "this process (--pairs rounds; writes jobscale-fast-paths.json)",
    )
    parser.add_argument("--work", type=Path, help="where the files go (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.resume_pairs and args.baseline is None:
        parser.error("--resume-pairs needs --baseline DIR")
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
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    with tempfile.TemporaryDirectory(prefix="jobscale-", dir=args.work) as tmp:
        work = Path(tmp)
        if args.fast_paths:
            got = fast_paths(args.fast_paths, work, args.pairs)
            got.update(machine=machine, load=[load_start, os.getloadavg()])
            (results / "jobscale-fast-paths.json").write_text(json.dumps(got, indent=2) + "\n")
            print(json.dumps(got["median"], indent=2))
            return 0
        with MockServerProcess("--latency-ms", "0") as server:
            if args.synthesized:
                got = measure_synthesized(args.synthesized, work, server.base_url, REPO)
                got.update(machine=machine, load=[load_start, os.getloadavg()])
                name = f"jobscale-synthesized-{args.synthesized}.json"
                (results / name).write_text(json.dumps(got, indent=2) + "\n")
                return 0
            if args.resume_pairs:
                got = resume_pairs(
                    args.resume_pairs, work, server.base_url, REPO, args.baseline, args.pairs
                )
                got.update(machine=machine, load=[load_start, os.getloadavg()])
                (results / "jobscale-resume-pairs.json").write_text(
                    json.dumps(got, indent=2) + "\n"
                )
                print({k: got[k] for k in ("baseline_over_this_wall", "baseline_over_this_cpu")})
                return 0
            result = measure(sizes, work, server.base_url, REPO)
            baseline = (
                baseline_pairs(sizes, work, server.base_url, REPO, args.baseline, args.pairs)
                if args.baseline
                else None
            )
    data = {
        "machine": machine,
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
