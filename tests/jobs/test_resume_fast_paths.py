"""The resume's fast paths against its general ones, on files hypothesis draws: the scan that
takes a whole record line in one match (``_scan(fast=True)``) against the reading of each line
by ``_read``, and the check's skip by input hash (``JobInput._skipper``) against parsing every
line and comparing requests; duplicates, superseded records, torn last lines, edited inputs,
foreign and unreadable lines included. And outputs written before records stored their
input's hash: they resume by their request hashes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reka_async import AsyncClient
from reka_async.jobs import InputChanged, JobInput, input_hasher, run_job, scan_output
from reka_async.jobs._resume import Resumed, _new, _scan, id_key
from reka_async.jobs._run import Job
from reka_async.testing import MockRekaServer

URL = "http://127.0.0.1/v1"
HASHER = input_hasher(
    model="reka-flash", params={}, system=None, input_format="jsonl", base_url=URL, api="native"
)
assert HASHER is not None
_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ---------------------------------------------------------------------------------- the scan

_ids = st.sampled_from(["a", "b", "c", "d", "e", 'q"uote', "é", "x\\y"])
_text = st.sampled_from(["ok", 'a "quoted" answer', "line\nbreak", '"usage": {"input_tokens": 1'])
_hashes = st.sampled_from(
    [
        None,
        "b2:" + "0123456789abcdef" * 2,
        "b2:" + "fedcba9876543210" * 2,
        "b2:" + "ABCDEF0123456789" * 2,  # not ours (upper case): the request hash counts
        "b2:short",
        "sha256:1",
    ]
)


@st.composite
def _answer(draw: st.DrawFn) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "custom_id": draw(_ids),
        "line": draw(st.none() | st.integers(1, 9)),
        "ok": True,
        "response": {"id": "r", "model": "m", "text": draw(_text), "finish_reason": "stop"},
        "usage": {"input_tokens": draw(st.integers(0, 99)), "output_tokens": 3},
        "latency_s": 0.01,
        "attempts": draw(st.integers(1, 3)),
    }
    if draw(st.booleans()):
        rec["cached"] = True
    rec["cost_usd"] = draw(st.none() | st.floats(0, 1, allow_nan=False))
    if draw(st.booleans()):
        rec["charged_usd"] = draw(st.floats(-1, 1, allow_nan=False))
    if draw(st.booleans()):
        rec["metadata"] = {"k": draw(_text)}
    request_hash = draw(st.none() | st.sampled_from(["sha256:aa", "sha256:bb"]))
    if request_hash is not None:
        rec["request_hash"] = request_hash
    input_hash = draw(_hashes)
    if input_hash is not None:
        rec["input_hash"] = input_hash
    return rec


@st.composite
def _failure(draw: st.DrawFn) -> dict[str, Any]:
    kind, status = draw(
        st.sampled_from(
            [("RateLimitError", 429), ("BadRequestError", 400), ("DuplicateCustomId", None)]
        )
    )
    rec: dict[str, Any] = {
        "custom_id": draw(_ids),
        "line": draw(st.integers(1, 9)),
        "ok": False,
        "error": {"type": kind, "message": "m", "status": status, "request_id": None},
        "latency_s": 0.0,
        "attempts": 1,
        "request_hash": "sha256:cc",
    }
    if draw(st.booleans()):
        rec["input_hash"] = "b2:" + "00112233445566778899aabbccddeeff"
    return rec


@st.composite
def _output(draw: st.DrawFn) -> bytes:
    """An output as runs leave it: records (later ones superseding earlier ones), and now and
    then a blank, foreign or unreadable line, CRLF endings, and a torn last line."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["answer", "answer", "answer", "failure", "other"]))
        if kind == "other":
            line = draw(st.sampled_from([b"", b"   ", b'{"not": "ours"}', b"not json", b"[1]"]))
        else:
            rec = draw(_answer() if kind == "answer" else _failure())
            line = json.dumps(rec, ensure_ascii=draw(st.booleans())).encode()
        lines.append(line + draw(st.sampled_from([b"\n", b"\r\n"])))
    torn = draw(st.sampled_from([b"", b'{"custom_id": "a", "li', b"garbage", b"  "]))
    return b"".join(lines) + torn


def _scanned(path: Path, *, fast: bool, keyed: bool = True) -> tuple[Resumed, bytes]:
    with path.open("r+b") as f:
        resumed = _new(f, keyed=keyed)
        cut = _scan(f, resumed, fast=fast)
        if cut >= 0:
            f.truncate(cut)
    return resumed, path.read_bytes()


def _view(resumed: Resumed) -> dict[str, Any]:
    return {
        "totals": resumed.totals(),
        "counts": (resumed.records, resumed.superseded, resumed.unreadable, resumed.end),
        "input_hashed": resumed.input_hashed,
        "entries": {cid: resumed.get(cid) for cid in ["a", "b", "c", "d", "e", 'q"uote', "é"]},
        "dup_lines": [line for line in range(1, 10) if resumed.has_dup_line(line)],
        "len": len(resumed),
    }


@_SETTINGS
@given(data=_output(), keyed=st.booleans())
def test_the_fast_scan_reads_any_output_as_the_general_one(
    tmp_path: Path, data: bytes, keyed: bool
) -> None:
    general_path, fast_path = tmp_path / "general.jsonl", tmp_path / "fast.jsonl"
    general_path.write_bytes(data)
    fast_path.write_bytes(data)
    general, general_file = _scanned(general_path, fast=False, keyed=keyed)
    fast, fast_file = _scanned(fast_path, fast=True, keyed=keyed)
    assert fast_file == general_file  # the same torn line cut
    assert _view(fast) == _view(general)


def test_the_fast_scan_takes_the_records_a_run_writes(tmp_path: Path) -> None:
    # The property test above would pass if the fast path never matched: it must match the
    # commonest record, and a record with metadata goes the general way.
    rec = {
        "custom_id": "a",
        "line": 1,
        "ok": True,
        "response": {"id": "r", "model": "m", "text": "t", "finish_reason": "stop"},
        "usage": {"input_tokens": 1, "output_tokens": 2},
        "latency_s": 0.01,
        "attempts": 1,
        "cost_usd": 1e-06,
        "request_hash": "sha256:aa",
        "input_hash": HASHER(b"x"),
    }
    from reka_async.jobs._resume import _RECORD

    assert _RECORD.fullmatch((json.dumps(rec) + "\n").encode()) is not None
    rec["metadata"] = {"k": "v"}
    assert _RECORD.fullmatch((json.dumps(rec) + "\n").encode()) is None


# --------------------------------------------------------------------------------- the check

_prompts = st.sampled_from(["one", "two", "three"])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    cid = draw(st.sampled_from(["a", "b", "c", "d", "e"]))
    prompt = draw(_prompts)
    shape = draw(st.sampled_from(["dumps", "dumps", "compact", "reordered", "int id", "bad"]))
    if shape == "dumps":
        return json.dumps({"custom_id": cid, "prompt": prompt}).encode()
    if shape == "compact":
        return json.dumps({"custom_id": cid, "prompt": prompt}, separators=(",", ":")).encode()
    if shape == "reordered":
        return json.dumps({"prompt": prompt, "custom_id": cid}).encode()
    if shape == "int id":
        return json.dumps({"custom_id": len(cid), "prompt": prompt}).encode()
    return draw(st.sampled_from([b"not json", b"", b"[]", b'{"custom_id": "a"}']))


def _record_of(job: Job, raw: bytes, lineno: int, *, ok: bool, hashed: bool) -> dict[str, Any]:
    """The record a run writes for line ``lineno`` (``hashed=False``: as an older version
    wrote it, without ``input_hash``)."""
    source = JobInput()
    item = source.parse(raw, lineno)
    assert item is not None
    rec: dict[str, Any] = {"custom_id": str(item["custom_id"]), "line": lineno, "ok": ok}
    if ok:
        rec["response"] = {"id": "r", "model": "m", "text": "t", "finish_reason": "stop"}
        rec["usage"] = {"input_tokens": 1, "output_tokens": 1}
    else:
        rec["error"] = {"type": "RateLimitError", "message": "m", "status": 429}
    rec.update(latency_s=0.0, attempts=1)
    if ok:
        rec["cost_usd"] = None
    rec["request_hash"] = job.hash_line(item, lineno)
    if hashed:
        rec["input_hash"] = job.hash_input(raw)
    return rec


def _plan(
    job: Job, inp: Path, out: Path, *, fast: bool, retry_failed: bool, rerun: bool
) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        source = JobInput(
            scan_output(str(out)),
            retry_failed=retry_failed,
            rerun_changed=rerun,
            hash_line=job.hash_line,
            hash_input=job.hash_input,
        )
        if not fast:
            source._skipper = lambda met: None  # type: ignore[method-assign]
        fd = os.open(inp, os.O_RDONLY)
        try:
            await source.check(fd)
        except InputChanged as exc:
            return {"changed": exc.changed, "count": exc.count}
        finally:
            os.close(fd)
        return {
            "plan": bytes(source.plan),
            "counts": (source.skipped, source.skipped_failed, source.retried, source.rerun),
            "seen": len(source.seen),
        }

    return asyncio.run(go())


@_SETTINGS
@given(
    before=st.lists(_line(), max_size=10),
    after=st.lists(_line(), max_size=10),
    keep=st.lists(st.booleans(), min_size=10, max_size=10),
    failed=st.lists(st.booleans(), min_size=10, max_size=10),
    hashed=st.booleans(),
    retry_failed=st.booleans(),
    rerun=st.booleans(),
)
def test_the_fast_skip_decides_as_the_general_check(
    tmp_path: Path,
    before: list[bytes],
    after: list[bytes],
    keep: list[bool],
    failed: list[bool],
    hashed: bool,
    retry_failed: bool,
    rerun: bool,
) -> None:
    # An output written for ``before`` (a record per line that can become one, some failed),
    # then an input that keeps some lines and has others (edited, moved, duplicated, new).
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"

    async def setup() -> Job:
        async with AsyncClient("k", URL) as client:
            return Job(client, str(inp), str(out), resume=True)

    job = asyncio.run(setup())
    records = []
    for lineno, raw in enumerate(before, 1):
        if JobInput().parse(raw, lineno) is None:
            continue
        rec = _record_of(job, raw, lineno, ok=not failed[lineno - 1], hashed=hashed)
        records.append(json.dumps(rec) + "\n")
    out.write_text("".join(records))
    lines = [raw for raw, k in zip(before, keep, strict=False) if k] + after
    inp.write_bytes(b"".join(raw + b"\n" for raw in lines))
    general = _plan(job, inp, out, fast=False, retry_failed=retry_failed, rerun=rerun)
    fast = _plan(job, inp, out, fast=True, retry_failed=retry_failed, rerun=rerun)
    assert fast == general


# ----------------------------------------------------- outputs from before the input's hash


def _strip_input_hashes(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        assert row.pop("input_hash").startswith("b2:")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_input(path: Path, prompts: list[str], *, compact: bool = False) -> None:
    separators = (",", ":") if compact else None
    path.write_text(
        "".join(
            json.dumps({"custom_id": f"q{i}", "prompt": p}, separators=separators) + "\n"
            for i, p in enumerate(prompts)
        )
    )


@pytest.mark.parametrize("hashed", [True, False], ids=["input hashes", "older output"])
async def test_a_resume_skips_what_is_answered_and_refuses_what_changed(
    tmp_path: Path, hashed: bool
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    prompts = [f"question {i}" for i in range(20)]
    _write_input(inp, prompts)
    async with MockRekaServer() as server, AsyncClient("k", server.base_url) as client:
        await run_job(client, str(inp), str(out))
        if not hashed:
            _strip_input_hashes(out)
        answered = out.read_bytes()
        # Reformatted lines ask the same: skipped (by their request hashes).
        _write_input(inp, [*prompts, "new one"], compact=True)
        report = await run_job(client, str(inp), str(out), resume=True)
        assert (report.skipped, report.written) == (20, 1)
        # An edited line is refused, with nothing sent.
        sent = len(server.requests)
        _write_input(inp, [*prompts[:3], "edited", *prompts[4:], "new one", "newer"])
        with pytest.raises(InputChanged) as refused:
            await run_job(client, str(inp), str(out), resume=True)
        assert refused.value.changed == [(4, "q3")]
        # A changed option changes every request: refused too.
        _write_input(inp, [*prompts, "new one"])
        with pytest.raises(InputChanged) as options:
            await run_job(client, str(inp), str(out), resume=True, params={"max_tokens": 7})
        assert options.value.count == 21
        assert len(server.requests) == sent
    assert out.read_bytes().startswith(answered)


def test_a_record_written_by_a_run_holds_its_input_hash(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_input(inp, ["a", "b"])

    async def go() -> None:
        async with MockRekaServer() as server, AsyncClient("k", server.base_url) as client:
            await run_job(client, str(inp), str(out))

    asyncio.run(go())
    raws = inp.read_bytes().splitlines()
    hasher = input_hasher(
        model="reka-flash",
        params={},
        system=None,
        input_format="jsonl",
        base_url="http://127.0.0.1:1/v1",  # the port is no part of it
        api="native",
    )
    assert hasher is not None
    rows = {r["custom_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert [rows["q0"]["input_hash"], rows["q1"]["input_hash"]] == [hasher(r) for r in raws]
    resumed = scan_output(str(out))
    entry = resumed.entry(id_key("q0"))
    assert entry is not None
    assert entry.input_digest == hasher.digest(raws[0])
    assert entry.request_digest is None  # read at the record's offset when needed
