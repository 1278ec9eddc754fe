"""A job's spend across runs (``_spend``): what a run starts from, and a compaction that
carries the spend of the records it removes. Shared by ``run_job`` and ``run_ray_job``."""

from __future__ import annotations

from ._resume import Resumed, compact_output, scan_output
from ._spend import Carried, job_spend, read_carried, remove_carried, write_carried

__all__ = ["compact_carrying", "spent_before"]


def spent_before(output_path: str, resumed: Resumed | None) -> float:
    """The job's spend before this run: its records' plus the sidecar's; settles a sidecar a
    crash left mid-compaction, and removes one beside an output that starts afresh
    (``resumed`` is ``None``).

    Raises:
        JobIOError: the sidecar cannot be read or written.
    """
    if resumed is None:
        remove_carried(output_path)
        return 0.0
    carried = read_carried(output_path)
    spent = job_spend(resumed.spent_usd, carried)
    if carried.pending_usd is not None:
        write_carried(output_path, Carried(spent - resumed.spent_usd))
    return spent


def compact_carrying(output_path: str, total: float) -> int:
    """Compact the output (the caller holds its lock), carrying the spend of the records it
    removes into the sidecar first, so the job's spend stays ``total``.

    Returns:
        The superseded records removed.

    Raises:
        JobIOError: the output or the sidecar cannot be rewritten.
    """
    carried = read_carried(output_path)
    if total > 0:
        write_carried(output_path, Carried(carried.carried_usd, pending_usd=total))
    compacted = compact_output(output_path)
    if total > 0:
        left = total - scan_output(output_path).spent_usd
        if left > 0:
            write_carried(output_path, Carried(left))
        else:
            remove_carried(output_path)
    return compacted
