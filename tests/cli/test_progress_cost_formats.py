"""The CLI in real subprocesses: progress lines, cost, --max-cost, --dry-run, --cache, formats,
exports, --summary, and the options and checks every command gained."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_commands import assert_clean_error, env_without_key, records, run, write_jsonl

from reka_async.batch import PriceTable
from reka_async.cli._parser import build_parser
from reka_async.testing import Billing, MockRekaServer


def _prompts(path: Path, n: int) -> Path:
    write_jsonl(path, [{"custom_id": f"q{i}", "prompt": f"question {i}"} for i in range(n)])
    return path


def test_every_option_has_help() -> None:
    _, commands = build_parser()
    for name, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help text"


def test_batch_without_a_tty_prints_progress_lines_and_cost(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 20)), "-o", str(out), "--mock",
        "--summary", str(summary),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("reka-async: progress ")]
    assert lines[0].startswith("reka-async: progress 0/20 0%")
    assert lines[-1].startswith("reka-async: progress 20/20 100%")
    assert "limit 64" in lines[-1]
    assert "cost $" in lines[-1]
    data = json.loads(summary.read_text())
    assert data["job"]["ok"] == 20
    assert data["job"]["cost_usd"] > 0
    assert data["this_run"]["done"] == 20


def test_the_summary_covers_the_whole_job_across_resumes(tmp_path: Path) -> None:
    inp = tmp_path / "p.jsonl"
    write_jsonl(inp, [{"custom_id": "a", "prompt": "x"}, "not json"])
    out, summary = tmp_path / "out.jsonl", tmp_path / "s.json"
    assert run("batch", str(inp), "-o", str(out), "--mock").returncode == 1
    with inp.open("a") as f:
        f.write(json.dumps({"custom_id": "b", "prompt": "y"}) + "\n")
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--summary", str(summary))
    assert proc.returncode == 1, proc.stderr
    assert "job total: 3 input(s), 2 ok, 1 failed (1 InvalidInputLine)" in proc.stderr
    data = json.loads(summary.read_text())
    assert data["job"]["errors"] == {"InvalidInputLine": 1}
    assert data["this_run"]["done"] == 1


def test_max_cost_stops_with_exit_3_and_resume_continues(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 200), tmp_path / "out.jsonl"
    args = ("batch", str(inp), "-o", str(out), "--mock", "--max-tokens", "100", "--no-progress")
    proc = run(*args, "--max-cost", "0.002")
    assert proc.returncode == 3, proc.stderr
    assert "max_cost" in proc.stderr
    assert "to continue: raise --max-cost" in proc.stderr
    assert "then reka-async batch" in proc.stderr
    done = records(out)
    assert 0 < len(done) < 200
    assert sum(r["cost_usd"] for r in done) <= 0.002
    assert run(*args, "--resume").returncode == 0
    assert len({r["custom_id"] for r in records(out)}) == 200


def test_max_cost_refuses_a_model_without_a_price(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 2)), "-o", str(out), "--mock",
        "--model", "reka-core", "--max-cost", "1",
    )  # fmt: skip
    assert_clean_error(proc)
    assert "no price is known for model 'reka-core'" in proc.stderr
    assert not out.exists()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"reka-core": {"input": 2, "output": 8}}))
    proc = run(
        "batch", str(tmp_path / "p.jsonl"), "-o", str(out), "--mock", "--model", "reka-core",
        "--max-cost", "1", "--prices", str(prices),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_a_prices_file_with_nan_or_infinity_is_exit_2_naming_the_model(
    tmp_path: Path, number: str
) -> None:
    prices = tmp_path / "prices.json"
    # JSON as Python's json module writes these numbers (it reads them back, too).
    prices.write_text(json.dumps({"reka-core": {"input": float(number), "output": 1}}))
    out = tmp_path / "out.jsonl"
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 2)), "-o", str(out), "--mock",
        "--model", "reka-core", "--max-cost", "1", "--prices", str(prices),
    )  # fmt: skip
    assert_clean_error(proc)
    assert "'reka-core' input must be a finite number" in proc.stderr
    assert not out.exists()


def test_dry_run_sends_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 10)), "-o", str(out), "--dry-run",
        "--max-tokens", "100",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "dry run: 10 request(s) to send" in proc.stdout
    # The bound --max-cost reserves, derived here apart from batch/bound.py: the bytes of
    # each body's compact JSON plus 8 tokens a message, and max_tokens of output.
    inputs = sum(
        len(json.dumps(
            {"model": "reka-flash", "messages": [{"role": "user", "content": f"question {i}"}],
             "max_tokens": 100},
            separators=(",", ":"),
        )) + 8
        for i in range(10)
    )  # fmt: skip
    assert f"bound: input tokens at most {inputs}, output tokens at most 1000\n" in proc.stdout
    cost = (inputs * 0.8 + 1000 * 2.0) / 1e6
    assert f"cost: at most ${cost:.4f} (the bound at the prices)" in proc.stdout
    assert not out.exists()


def test_dry_run_says_which_media_parts_have_no_bound(tmp_path: Path) -> None:
    image = {"type": "image_url", "image_url": "https://example.com/a.png"}
    rows = [{"messages": [{"role": "user", "content": [image, {"type": "text", "text": "q"}]}]}]
    write_jsonl(tmp_path / "p.jsonl", rows * 3)
    args = ("batch", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "o.jsonl"), "--dry-run")
    proc = run(*args, "--max-cost", "1")
    assert proc.returncode == 0, proc.stderr
    assert "3 media part(s)" in proc.stdout
    assert "media: 3 request(s) hold media parts with no bound" in proc.stdout
    assert "--max-cost $1 would stop this job before its end" in proc.stdout
    bounded = run(*args, "--max-cost", "1", "--media-tokens", "1000")
    assert "media:" not in bounded.stdout
    assert "would stop" not in bounded.stdout
    # a media part counts 0 until --media-tokens says how much: then 1000 each
    inputs = int(proc.stdout.split("input tokens at most ")[1].split(",")[0])
    with_media = int(bounded.stdout.split("input tokens at most ")[1].split(",")[0])
    assert with_media == inputs + 3000


def test_dry_run_prints_the_first_requests_bodies(tmp_path: Path) -> None:
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 5)), "-o", str(tmp_path / "out.jsonl"),
        "--dry-run", "--max-tokens", "100", "--system", "Be brief.",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("request ")]
    assert [ln.split(": ", 1)[0] for ln in shown] == [
        "request 1 (custom_id q0)",
        "request 2 (custom_id q1)",
        "request 3 (custom_id q2)",
    ]
    body = json.loads(shown[1].split(": ", 1)[1])
    assert body["model"] == "reka-flash"
    assert body["max_tokens"] == 100
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "question 1"},
    ]
    assert "dry run: 5 request(s) to send" in proc.stdout  # the count and bound lines stay


def test_a_refused_run_prints_its_error_and_no_run_summary(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 2), tmp_path / "out.jsonl"
    assert run("batch", str(inp), "-o", str(out), "--mock").returncode == 0
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"reka-async: error: {out} already exists and is not empty; pass --resume to continue "
        f"it, --overwrite to start afresh, or choose another output path"
    ]


def test_the_cache_answers_a_second_job(tmp_path: Path) -> None:
    inp, cache = _prompts(tmp_path / "p.jsonl", 5), tmp_path / "cache.db"
    first = run("batch", str(inp), "-o", str(tmp_path / "a.jsonl"), "--mock", "--cache", str(cache))
    assert first.returncode == 0, first.stderr
    second = run(
        "batch", str(inp), "-o", str(tmp_path / "b.jsonl"), "--mock", "--cache", str(cache)
    )
    assert second.returncode == 0, second.stderr
    assert "5 from the cache" in second.stderr
    assert all(r["cached"] for r in records(tmp_path / "b.jsonl"))


def test_a_corrupt_cache_is_a_usage_error_before_output(tmp_path: Path) -> None:
    cache = tmp_path / "cache.db"
    cache.write_bytes(b"garbage" * 1000)
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(_prompts(tmp_path / "p.jsonl", 1)), "-o", str(out), "--mock",
               "--cache", str(cache))  # fmt: skip
    assert_clean_error(proc)
    assert "delete it" in proc.stderr
    assert not out.exists()


def test_a_bad_first_line_does_not_turn_jsonl_into_text(tmp_path: Path) -> None:
    inp, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, ["oops", {"custom_id": "a", "prompt": "x"}])
    assert run("batch", str(inp), "-o", str(out), "--mock").returncode == 1
    rows = {r["custom_id"]: r for r in records(out)}
    assert rows["line-1"]["error"]["type"] == "InvalidInputLine"
    assert rows["a"]["response"]["text"] == "Mock reply to: x"


def test_an_unknown_extension_needs_format(tmp_path: Path) -> None:
    inp, out = tmp_path / "p.data", tmp_path / "out.jsonl"
    inp.write_text("hello\n")
    assert_clean_error(run("batch", str(inp), "-o", str(out), "--mock"))
    assert not out.exists()
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--format", "text")
    assert proc.returncode == 0, proc.stderr
    assert records(out)[0]["response"]["text"] == "Mock reply to: hello"


def test_openai_batch_lines_and_metadata(tmp_path: Path) -> None:
    inp, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    body = {"model": "reka-flash", "messages": [{"role": "user", "content": "hi"}]}
    write_jsonl(
        inp,
        [
            {"custom_id": "o1", "method": "POST", "url": "/v1/chat/completions", "body": body},
            {"custom_id": "m1", "prompt": "x", "metadata": {"source": "doc-7"}},
        ],
    )
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 0, proc.stderr
    rows = {r["custom_id"]: r for r in records(out)}
    assert rows["o1"]["response"]["text"] == "Mock reply to: hi"
    assert rows["m1"]["metadata"] == {"source": "doc-7"}


def test_csv_output_and_export(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 3), tmp_path / "out.csv"
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["custom_id"] for r in rows] == ["q0", "q1", "q2"]
    assert rows[0]["text"] == "Mock reply to: question 0"
    assert (tmp_path / "out.jsonl").exists()  # the job file: resume works on it
    again = tmp_path / "again.csv"
    assert run("export", str(tmp_path / "out.jsonl"), str(again)).returncode == 0
    assert again.read_text() == out.read_text()


def test_empty_input_is_warned_about(tmp_path: Path) -> None:
    inp = tmp_path / "p.jsonl"
    inp.write_text("\n\n")
    proc = run("batch", str(inp), "-o", str(tmp_path / "out.jsonl"), "--mock")
    assert proc.returncode == 0
    assert "holds no requests" in proc.stderr


def test_a_refused_base_url_is_exit_2_before_any_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = run(
        "batch", str(_prompts(tmp_path / "p.jsonl", 1)), "-o", str(out),
        "--base-url", "http://example.com/v1", "--api-key", "k",
    )  # fmt: skip
    assert_clean_error(proc)
    assert "--allow-insecure-http" in proc.stderr
    assert not out.exists()
    assert_clean_error(run("chat", "hi", "--base-url", "ftp://x", "--api-key", "k"))
    assert_clean_error(run("chat", "hi", "--api-key", "bad\x01key"))


def test_chat_json_and_sampling_options() -> None:
    proc = run("chat", "--mock", "--json", "--top-p", "0.5", "--top-k", "5", "--seed", "1",
               "--stop", "END", "hi")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["responses"][0]["message"]["content"] == "Mock reply to: hi"


def test_chat_strips_a_prompt_from_stdin() -> None:
    proc = run("chat", "--mock", "-", stdin="hi\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Mock reply to: hi\n"


def test_batch_system_timeout_fail_fast_no_adaptive(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 2), tmp_path / "out.jsonl"
    proc = run(
        "batch", str(inp), "-o", str(out), "--mock", "--system", "Be brief.", "--timeout", "30",
        "--fail-fast", "--no-adaptive",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(records(out)) == 2


def test_mock_answers_in_the_cache_never_serve_another_server(tmp_path: Path) -> None:
    """``--mock --cache`` then a real server that refuses the key: nothing from the cache."""
    from reka_async.testing import MockRekaServer

    inp, cache = _prompts(tmp_path / "p.jsonl", 2), tmp_path / "shared.db"
    first = run("batch", str(inp), "-o", str(tmp_path / "a.jsonl"), "--mock", "--cache", str(cache))
    assert first.returncode == 0, first.stderr
    with MockRekaServer.in_thread(api_key="the-right-key") as srv:
        proc = run(
            "batch", str(inp), "-o", str(tmp_path / "b.jsonl"), "--cache", str(cache),
            "--base-url", srv.base_url, "--api-key", "a-wrong-key", "--max-retries", "0",
            "--concurrency", "1",
        )  # fmt: skip
    assert proc.returncode == 3, proc.stderr  # the refused key stops the batch
    assert "API key was refused" in proc.stderr
    assert "job total: 1 of 2 input(s) done" in proc.stderr  # stopped: not "1 input(s)"
    assert "from the cache" not in proc.stderr
    rows = records(tmp_path / "b.jsonl")
    assert rows
    assert not any(r.get("cached") for r in rows)


def test_three_cli_runs_with_max_cost_and_resume_bill_at_most_the_budget(tmp_path: Path) -> None:
    flash = PriceTable().get("reka-flash")
    assert flash is not None
    inp = tmp_path / "p.jsonl"
    write_jsonl(inp, [{"custom_id": f"q{i}", "prompt": f"東京 question {i}"} for i in range(200)])
    out = tmp_path / "out.jsonl"
    env = env_without_key(REKA_API_KEY="k")
    with MockRekaServer.in_thread(billing=Billing(message_overhead=8)) as server:
        first = ("--base-url", server.base_url, "batch", str(inp), "-o", str(out))
        flags = ("--max-cost", "0.01", "--max-tokens", "200", "--no-progress")
        procs = [run(*first, *flags, env=env)]
        after_first = len(server.billed)
        procs += [run(*first, *flags, "--resume", env=env) for _ in range(2)]
        spent = sum(flash.cost(i, o) for _, i, o in server.billed)
        assert len(server.billed) == after_first  # the job's budget was spent: nothing more
    assert [p.returncode for p in procs] == [3, 3, 3], procs[-1].stderr
    assert 0 < spent <= 0.01
    assert "raise --max-cost" in procs[-1].stderr


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_max_cost_must_be_a_finite_positive_amount(tmp_path: Path, value: str) -> None:
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(_prompts(tmp_path / "p.jsonl", 1)), "-o", str(out), "--mock",
               "--max-cost", value)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--max-cost" in proc.stderr
    assert not out.exists()  # refused before the output was created
