"""Ray Data integration: chat requests over a ``ray.data.Dataset`` on a pool of actors.

Install with ``pip install 'reka-async[ray]'``. This module imports without Ray; Ray and
pyarrow are imported when first needed.

Three layers, each built on the one before:

- `RekaChatMapper`: a callable class for ``Dataset.map_batches(RekaChatMapper, ...)``. Each
  actor builds one ``AsyncClient`` and one ``BatchRunner`` lazily, on its own event loop, and
  feeds every batch it is running at once into that runner's single request stream, so
  ``concurrency_per_actor`` is one limit per actor however many batches Ray runs
  concurrently. Every input row gives exactly one output row; a failed request is a row with
  ``ok=False`` and the error columns set, never a failed block.
- `map_chat`: applies `RekaChatMapper` to a dataset with settings that keep the actors busy
  (async batches, two concurrent tasks per actor, a shared rate limiter).
- `run_ray_job`: a JSONL (or Parquet) file in, a JSONL file out, in the same line formats as
  ``reka-async batch`` (resume included).

Global rate limits. A budget (``rpm``/``tpm``) is for the whole job, not per actor. Two ways
to split it, both built here:

- Per-actor share (``RekaChatMapper(rpm=..., num_actors=N)``): each actor's own token
  bucket gets ``rpm / N``. No coordination and no extra actor, but the share is fixed: an
  idle actor's share is wasted (at the tail of a job, or with uneven blocks), and more
  actors than ``N`` exceed the budget.
- Shared limiter (`create_rate_limiter`, the default of `map_chat` and `run_ray_job`): one
  small async actor holds the RPM and TPM token buckets; each worker takes permits from it
  in chunks (about a quarter of a second of budget, at least one request) and spends them
  locally, so busy actors get more of the budget and idle ones none. Costs: one round trip
  per chunk; permits a worker holds can be spent a little later than granted (at most one
  chunk per actor, so short windows may see up to ``num_actors`` chunks above the bucket);
  the limiter is one more actor (zero CPUs) and a single point of coordination. TPM is
  estimated before each request, like ``BatchRunner``; the unused part of an estimate stays
  with the worker for its next requests, and a surplus above two chunks goes back to the
  limiter. The limiter belongs to the driver that created it and ends with it.

Either way the buckets start full, as in ``BatchRunner``: up to one minute of budget may go
out at once before the steady rate applies.

Shared pacing. Without a budget too, the actors pace against the server's own limit: each
client learns the send rate the server allows (its headers and 429s, ``_http/quota.py``),
and with more than one actor `map_chat` starts the shared actor for it (``shared_limiter``),
through which every actor's pacer syncs four times a second: the job's learned rate, split
over the actors syncing, and the pauses one of them takes. A client started afresh between
an actor's batches starts at its share (``_limiter``'s docstring).

Secrets: the API key travels to the actors as a constructor argument wrapped in `Secret`
(never in the dataset, never in ``runtime_env`` environment variables, which the Ray
dashboard shows), and neither `Secret` nor `RekaChatMapper` shows it in its ``repr``.

Modules, in the order of the data flow: ``_secrets`` (`Secret`), ``_limiter`` (the shared
actor, a worker's budget and its link to the shared pacing), ``_rows`` (Ray batches to
items, results to tables), ``_engine`` (one runner and stream per actor loop), ``_mapper``
(`RekaChatMapper`, `map_chat`) and ``_job`` (`run_ray_job`, on the JSONL format of
``reka_async.jobs``).
"""

from __future__ import annotations

from ._common import INSTALL_HINT as INSTALL_HINT
from ._job import RayJobSummary, run_ray_job
from ._limiter import create_rate_limiter
from ._mapper import RekaChatMapper, map_chat
from ._rows import OUTPUT_COLUMNS
from ._secrets import Secret

__all__ = [
    "OUTPUT_COLUMNS",
    "RayJobSummary",
    "RekaChatMapper",
    "Secret",
    "create_rate_limiter",
    "map_chat",
    "run_ray_job",
]
