"""Issue 30, files: what an attacker with write access to the output's directory can plant
(symbolic links at the lock's and the temporary files' names, another user's lock) cannot
turn our writes against a victim file, and a symlinked output is written through its link.

Every attack runs in the test's own temporary directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from reka_async.jobs import OutputLock, OutputLocked, compact_output, export_output

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90
VICTIM = "precious data\n"


def _record(custom_id: str, text: str, line: int) -> str:
    return json.dumps(
        {"custom_id": custom_id, "line": line, "ok": True, "response": {"text": text}}
    )


def _job_file(path: Path) -> None:
    # Two records of "a" (the first superseded) so that a compaction has work to do.
    path.write_text(
        "\n".join([_record("a", "old", 1), _record("b", "bee", 2), _record("a", "new", 1)]) + "\n",
        encoding="utf-8",
    )


def _batch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    env["REKA_API_KEY"] = "test-key"
    return subprocess.run(
        [sys.executable, "-m", "reka_async", "batch", *args, "--mock", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM, encoding="utf-8")
    return victim


# --------------------------------------------------------------------------- the lock


def test_a_planted_lock_link_is_refused_and_its_target_is_untouched(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.lock").symlink_to(victim)
    with pytest.raises(OutputLocked, match=r"symbolic link; a lock file never is: remove it"):
        OutputLock(str(out)).acquire()
    assert victim.read_text(encoding="utf-8") == VICTIM


def test_a_dangling_lock_link_creates_nothing(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "created-by-us"
    (tmp_path / "out.jsonl.lock").symlink_to(target)
    with pytest.raises(OutputLocked, match="symbolic link"):
        OutputLock(str(tmp_path / "out.jsonl")).acquire()
    assert not target.exists()


def test_a_lock_file_with_another_hard_link_is_refused(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    os.link(victim, tmp_path / "out.jsonl.lock")
    with pytest.raises(OutputLocked, match="has 2 hard links"):
        OutputLock(str(tmp_path / "out.jsonl")).acquire()
    assert victim.read_text(encoding="utf-8") == VICTIM


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_lock_file_of_another_user_is_refused_naming_the_owner(tmp_path: Path) -> None:
    lock = tmp_path / "out.jsonl.lock"
    lock.write_text("123\n", encoding="utf-8")
    os.chown(lock, 65534, 65534)
    with pytest.raises(OutputLocked, match=r"belongs to another user \(.*uid 65534\)"):
        OutputLock(str(tmp_path / "out.jsonl")).acquire()
    assert lock.read_text(encoding="utf-8") == "123\n"


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "out.jsonl.lock"
    lock.write_text("99999999\n", encoding="utf-8")  # its flock died with its process
    with OutputLock(str(tmp_path / "out.jsonl")) as held:
        assert held.lock_path == str(lock)
        assert lock.read_text(encoding="utf-8") == f"{os.getpid()}\n"
    assert not lock.exists()


def test_two_paths_to_one_output_share_one_lock(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    locked = rf"link\.jsonl is being written.*pid {os.getpid()}"
    with OutputLock(str(real)), pytest.raises(OutputLocked, match=locked):
        OutputLock(str(link)).acquire()


def test_the_cli_on_a_link_to_a_locked_output_exits_2_naming_the_holder(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"custom_id": "a", "prompt": "hi"}) + "\n", encoding="utf-8")
    real = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    with OutputLock(str(real)):
        done = _batch(str(inp), "-o", str(link))
    assert done.returncode == 2, done.stderr
    assert f"pid {os.getpid()}" in done.stderr
    assert not real.exists() or real.stat().st_size == 0  # nothing was written twice


# --------------------------------------------------------------------------- temp files


def test_planted_links_at_the_old_temp_names_catch_nothing(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    job, csv_out = tmp_path / "out.jsonl", tmp_path / "out.csv"
    _job_file(job)
    pid = os.getpid()
    (tmp_path / f"out.csv.part-{pid}").symlink_to(victim)
    (tmp_path / f"out.jsonl.compact-{pid}").symlink_to(victim)
    assert export_output(str(job), str(csv_out)) == 2
    assert compact_output(str(job)) == 1
    assert victim.read_text(encoding="utf-8") == VICTIM
    assert not csv_out.is_symlink()
    assert not job.is_symlink()
    assert "bee" in csv_out.read_text(encoding="utf-8")
    assert len(job.read_text(encoding="utf-8").splitlines()) == 2
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"victim.txt", "out.jsonl", "out.csv", f"out.csv.part-{pid}"} | {
        f"out.jsonl.compact-{pid}"
    }


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path: Path) -> None:
    job = tmp_path / "out.jsonl"
    _job_file(job)
    old = os.umask(0o002)
    try:
        export_output(str(job), str(tmp_path / "new.csv"))
        kept = tmp_path / "kept.csv"
        kept.write_text("", encoding="utf-8")
        kept.chmod(0o640)
        export_output(str(job), str(kept))
        job.chmod(0o604)
        compact_output(str(job))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o664
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    assert stat.S_IMODE(job.stat().st_mode) == 0o604


# --------------------------------------------------------------------------- linked outputs


def test_a_linked_export_and_a_linked_job_file_are_written_through_their_links(
    tmp_path: Path,
) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    job_real, csv_real = real_dir / "out.jsonl", real_dir / "out.csv"
    _job_file(job_real)
    job_link, csv_link = tmp_path / "out.jsonl", tmp_path / "out.csv"
    job_link.symlink_to(job_real)
    csv_link.symlink_to(csv_real)
    export_output(str(job_link), str(csv_link))
    assert compact_output(str(job_link)) == 1
    assert csv_link.is_symlink()
    assert job_link.is_symlink()
    assert "bee" in csv_real.read_text(encoding="utf-8")
    assert len(job_real.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in real_dir.iterdir()) == ["out.csv", "out.jsonl"]


def test_batch_to_a_linked_csv_writes_the_target(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"custom_id": "a", "prompt": "hi"}) + "\n", encoding="utf-8")
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    link = tmp_path / "link.csv"
    link.symlink_to(real_dir / "results.csv")
    done = _batch(str(inp), "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert (real_dir / "results.csv").read_text(encoding="utf-8").startswith("custom_id,")
    assert (real_dir / "results.jsonl").exists()  # the job file sits beside the real export


def test_bench_json_is_written_through_a_link_and_no_planted_temp_name_catches_it(
    tmp_path: Path,
) -> None:
    from reka_async.bench import BenchConfig, BenchReport

    victim = _victim(tmp_path)
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    link = tmp_path / "bench.json"
    link.symlink_to(real_dir / "bench.json")
    (real_dir / "bench.json.tmp").symlink_to(victim)  # the old predictable name
    (tmp_path / "bench.json.tmp").symlink_to(victim)
    BenchReport(config=BenchConfig(), runs=(), saturation=None, environment={}).write_json(link)
    assert link.is_symlink()
    assert json.loads((real_dir / "bench.json").read_text(encoding="utf-8"))["runs"] == []
    assert victim.read_text(encoding="utf-8") == VICTIM


# --------------------------------------------------------------------------- the cache database


def test_a_new_cache_database_and_its_sidecars_get_the_umask_mode(tmp_path: Path) -> None:
    from reka_async.batch import RequestCache

    path = tmp_path / "cache.db"
    old = os.umask(0o002)
    try:
        cache = RequestCache(str(path))
    finally:
        os.umask(old)
    try:
        # SQLite alone creates 0o644 whatever the umask; its WAL sidecars copy the database.
        made = sorted(p.name for p in tmp_path.iterdir())
        assert "cache.db" in made
        for name in made:
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name
    finally:
        cache.close()


def test_a_linked_cache_is_written_through_its_link(tmp_path: Path) -> None:
    from reka_async.batch import RequestCache

    real_dir = tmp_path / "real"
    real_dir.mkdir()
    link = tmp_path / "cache.db"
    link.symlink_to(real_dir / "cache.db")  # dangling: the target is created
    cache = RequestCache(str(link))
    try:
        assert link.is_symlink()
        assert (real_dir / "cache.db").stat().st_size > 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.db", "real"]
    finally:
        cache.close()


def test_links_planted_at_the_cache_sidecar_names_catch_nothing(tmp_path: Path) -> None:
    from reka_async.batch import CacheError, RequestCache

    victim = _victim(tmp_path)
    for suffix in ("-journal", "-wal", "-shm"):
        (tmp_path / f"cache.db{suffix}").symlink_to(victim)
    with pytest.raises(CacheError, match=r"cache\.db"):
        RequestCache(str(tmp_path / "cache.db")).close()
    assert victim.read_text(encoding="utf-8") == VICTIM
