"""What the Ray modules share: the optional imports, argument checks, Ray Data's defaults."""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Final

from ..._wire import request_body

__all__ = [
    "INSTALL_HINT",
    "MIN_RAY",
    "check_params",
    "check_positive_int",
    "check_positive_or_none",
    "check_ray_version",
    "default_batch_size",
    "require",
]

INSTALL_HINT: Final = "pip install 'reka-async[ray]'"

#: Ray Data runs this many batches of one block at once on an async UDF (its default).
_ASYNC_BATCHES_PER_TASK: Final = int(
    os.environ.get("RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY", "4")
)


def require(module: str) -> Any:
    """Import an optional dependency, or fail with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"reka_async.integrations.ray needs Ray Data, and {module!r} is not installed: "
            f"{INSTALL_HINT}"
        ) from exc


#: The oldest Ray whose ``map_batches`` runs `RekaChatMapper` (the ``ray`` extra's floor).
#: Before 2.32 it refuses an async generator ``__call__``; from 2.32 to 2.39 an actor's task
#: can wait forever after its last batch (fixed by ray-project/ray#48861, in 2.40).
MIN_RAY: Final = (2, 40)


def check_ray_version(version: str | None = None) -> None:
    """Raise ``ImportError`` if Ray is older than `MIN_RAY` (a job on it would hang).

    Args:
        version: the version to check; default the installed ``ray`` distribution's. No
            check without Ray, or for a version that does not start with ``X.Y``.

    Raises:
        ImportError: the version is older than `MIN_RAY`.
    """
    if version is None:
        try:
            version = metadata.version("ray")
        except metadata.PackageNotFoundError:
            return
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None or (int(match[1]), int(match[2])) >= MIN_RAY:
        return
    floor = ".".join(map(str, MIN_RAY))
    raise ImportError(
        f"reka_async.integrations.ray needs Ray {floor} or newer, and Ray {version} is "
        f"installed: its map_batches refuses or can hang on RekaChatMapper's async "
        f"generator; pip install 'ray[data]>={floor}'"
    )


def check_positive_int(label: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is an int of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label}: must be a positive integer, got {value!r}")


def check_positive_or_none(**values: float | None) -> None:
    """Raise ``ValueError`` for the first of ``values`` (by name) that is given and not > 0."""
    for label, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{label}: must be positive or None, got {value!r}")


def check_params(model: str, params: Mapping[str, Any]) -> None:
    """Validate the chat parameters once, up front, with a dummy message (as BatchRunner)."""
    request_body(
        model=model,
        messages=[{"role": "user", "content": "x"}],
        params=params,
        stream=False,
    )


def default_batch_size(concurrency_per_actor: int, tasks_per_actor: int) -> int:
    """Rows per batch that keep ``concurrency_per_actor`` requests busy on an actor."""
    in_flight_batches = _ASYNC_BATCHES_PER_TASK * tasks_per_actor
    return max(1, math.ceil(2 * concurrency_per_actor / in_flight_batches))
