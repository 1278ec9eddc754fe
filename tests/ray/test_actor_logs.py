"""A job on a real Ray cluster leaves nothing unclosed in its actors' logs: each actor's
client is closed when its work ends (the logs of a cluster of its own, read after it shut
down: the actors' stderr never reaches a test otherwise)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import inspect
    import sys

    import ray

    from reka_async.integrations.ray import map_chat
    from reka_async.testing import MockServerProcess

    with MockServerProcess("--api-key", "k") as server:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1])
        ray.data.DataContext.get_current().enable_progress_bars = False
        # Ray before 2.10 calls the block count parallelism=.
        blocks = inspect.signature(ray.data.from_items).parameters
        kw = "override_num_blocks" if "override_num_blocks" in blocks else "parallelism"
        ds = ray.data.from_items(
            [{"custom_id": f"q{i}", "prompt": f"p{i}"} for i in range(200)], **{kw: 4}
        )
        answers = map_chat(
            ds, api_key="k", base_url=server.base_url, num_actors=2, concurrency_per_actor=8,
            max_tokens=8,
        )
        rows = answers.take_all()
        ray.shutdown()
    print("rows", len(rows), sum(r["ok"] for r in rows))
    """
)


def run_job(temp: str) -> tuple[int, str, str]:
    """Run SCRIPT; a job still running after 300 s fails the test with its stderr.

    The script runs in a process group of its own, which a hung job loses whole: its Ray
    processes and its mock server would otherwise outlive it (Ray 2.32 to 2.39 hung here
    until the integration refused them).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, temp],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "default"},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the job did not end within 300 s; its stderr ends:\n{stderr[-3000:]}")
    return proc.returncode, stdout, stderr


def test_a_map_chat_job_leaves_no_unclosed_session_in_the_actor_logs() -> None:
    temp = tempfile.mkdtemp(prefix="rk", dir="/tmp")  # short: Ray's socket paths live in it
    try:
        returncode, stdout, stderr = run_job(temp)
        assert returncode == 0, stderr[-3000:]
        assert "rows 200 200" in stdout
        logs = glob.glob(f"{temp}/session_2*/logs/worker-*")
        texts = {path: Path(path).read_text(errors="replace") for path in logs}
        actors = [p for p, text in texts.items() if "RekaChatMapper" in text]
        assert actors, "no actor log found: the check would see nothing"
        unclosed = {
            os.path.basename(p): [ln for ln in text.splitlines() if "Unclosed" in ln]
            for p, text in texts.items()
            if "Unclosed" in text
        }
        assert unclosed == {}
    finally:
        shutil.rmtree(temp, ignore_errors=True)
