"""A job's spend: what every run of one output was charged, so ``max_cost`` caps the job.

The spend of a job is the sum over **all** its records, superseded ones included (an item
that failed and was retried was paid twice), of ``record_spend``: the record's
``charged_usd`` (what the cost budget charged the item, a failed attempt of unknown fate at
its bound) or, in a record written without a budget, its response's ``cost_usd``. Compaction
removes superseded records, so before it does, their spend is carried into a sidecar file
beside the output, ``OUTPUT.spend.json`` (``{"carried_usd": X}``), and a resume adds that to
the records' sum (``job_spend``).

The sidecar follows ``_files.py``'s rules: written under the output's lock, to a
``mkstemp`` file in the real output's directory, then ``os.replace``-d over the old one.
Compaction is two steps and a crash can fall between them, so the sidecar is written twice:
before compacting, with the job's total as ``pending_usd`` (a resume counts at least that);
after, with the carried amount that makes the records' sum equal that total. Either crash
leaves a resume counting the right total, never less.

After a crash (a kill mid-run), the attempts then in flight have no record: the job's spend
misses at most their reservations, the overspend bound docs/guides/cli.md states.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any, Final

import attrs

from .._files import real_path, temp_beside
from ._errors import JobIOError

__all__ = [
    "Carried",
    "job_spend",
    "read_carried",
    "record_spend",
    "remove_carried",
    "spend_path",
    "write_carried",
]

_SUFFIX: Final = ".spend.json"


def record_spend(record: Any) -> float:
    """What one output record says its item was charged, in USD (0 when it says nothing)."""
    if not isinstance(record, dict):
        return 0.0
    for key in ("charged_usd", "cost_usd"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value) and value > 0:
                return float(value)
            if key == "charged_usd":
                return 0.0  # charged nothing (every attempt refused or unsent)
    return 0.0


@attrs.frozen
class Carried:
    """What the sidecar holds.

    Attributes:
        carried_usd: the spend of records compaction removed.
        pending_usd: the job's total written just before a compaction (``None`` once it
            finished): a resume counts at least this.
    """

    carried_usd: float = 0.0
    pending_usd: float | None = None


def spend_path(output_path: str) -> str:
    """The sidecar of ``output_path``: beside the real file (a linked output's target)."""
    return real_path(output_path) + _SUFFIX


def read_carried(output_path: str) -> Carried:
    """The sidecar of ``output_path`` (an absent or unreadable one carries nothing).

    Raises:
        JobIOError: it exists but cannot be read.
    """
    path = spend_path(output_path)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return Carried()
    except ValueError:
        data = None
    except OSError as exc:
        raise JobIOError(
            f"could not read {path}: {exc.strerror or exc}", path=path, written=0
        ) from exc
    if not isinstance(data, dict):
        # Not ours or torn: counting nothing would let a budget overspend, so refuse loudly.
        raise JobIOError(
            f"{path} is not a spend record of this job ({{'carried_usd': USD}}); restore it, "
            f"or delete it to count only the output's records",
            path=path,
            written=0,
        )
    return Carried(_usd(data.get("carried_usd")) or 0.0, _usd(data.get("pending_usd")))


def _usd(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


def job_spend(records_usd: float, carried: Carried) -> float:
    """The job's spend: the records' sum plus what compactions carried (at least a pending
    total, when a compaction was cut short)."""
    total = records_usd + carried.carried_usd
    if carried.pending_usd is not None:
        total = max(total, carried.pending_usd)
    return total


def write_carried(output_path: str, carried: Carried) -> None:
    """Replace the sidecar atomically (the caller holds the output's lock).

    Raises:
        JobIOError: it could not be written; the old one is intact.
    """
    target = spend_path(output_path)
    data: dict[str, float] = {"carried_usd": math.ceil(carried.carried_usd * 1e8) / 1e8}
    if carried.pending_usd is not None:
        data["pending_usd"] = math.ceil(carried.pending_usd * 1e8) / 1e8
    temp = ""
    try:
        fd, temp = temp_beside(target, "spend")
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(data).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
        temp = ""
    except OSError as exc:
        raise JobIOError(
            f"could not write {target}: {exc.strerror or exc}", path=target, written=0
        ) from exc
    finally:
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def remove_carried(output_path: str) -> None:
    """Delete the sidecar (an output started afresh carries nothing)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spend_path(output_path))
