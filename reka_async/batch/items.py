"""From a batch item to a request: ``prepare_item``, the ``BatchOptions`` a runner takes, and
the token estimate the TPM budget charges before a response says what was used.

An item is a prompt string, a list of messages, a dict with ``messages`` or ``prompt`` (and
optionally ``custom_id``, ``model``, ``extra_body``, ``metadata`` (echoed into the result,
never sent) and chat parameters), or a
``ChatRequest``. Callers that read items from elsewhere (the CLI's and Ray's JSONL jobs) pass
their own ``prepare`` callable, usually a wrapper around ``prepare_item``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import InvalidRequestError
from .._http.budget import estimate_tokens
from .._models import ChatRequest
from .._types import ChatParams, NotGiven
from .._wire import request_body, request_from_model

if TYPE_CHECKING:
    from .._http import TimeoutLike
    from .._http.budget import RateBudget
    from .cache import RequestCache
    from .cost import PriceTable
    from .progress import BatchProgress
    from .results import ResultHook

__all__ = ["BatchOptions", "Prepare", "estimate_tokens", "item_custom_id", "prepare_item"]

#: ``prepare(index, item) -> (custom_id, wire body)``; raises ``InvalidRequestError``.
Prepare = Callable[[int, Any], tuple[str, dict[str, Any]]]

_ITEM_KEYS: Final = frozenset(
    ("messages", "prompt", "custom_id", "model", "extra_body", "metadata")
)


class BatchOptions(ChatParams, total=False):
    """The options of ``BatchRunner`` (and ``Client.batch``): how to run, plus the
    ``ChatParams`` every item gets (an item's own values win).

    Keys:
        concurrency: most requests in flight at once (default 64). An item waiting out a
            retry's delay is not in flight: its slot serves the next item meanwhile (at most
            ``concurrency`` items wait so beside those in flight).
        model: model for items that name none (default ``"reka-flash"``).
        rpm: requests-per-minute budget of this runner (client-side), shared by all its runs
            and streams, concurrent ones included; every attempt counts. ``None``: none
            (the client's own budget, if any, still holds).
        tpm: tokens-per-minute budget likewise, estimated before each call and corrected
            with ``usage``.
        rate_budget: a ``RateBudget`` instead of ``rpm``/``tpm`` (bursts, or sharing).
        adaptive: AIMD concurrency (default on): halve the limit while overload signals
            (an overload 429, a timeout, running out of file descriptors) are more than a
            tenth of recent outcomes, then grow by one per window of successes, never above
            ``concurrency``. A 429 saying the key's quota is spent pauses the client instead.
        fail_fast: raise the first error and cancel the rest instead of collecting it.
        circuit_breaker: stop the whole batch with ``BatchAbortedError`` (default on) when
            going on cannot help: a refused key (401), a forbidden one (403), an account out
            of credits, or a server wait longer than the client's ``max_retry_wait``. An
            unknown model (404) fails the items naming it without sending them either way.
        max_error_rate: stop the batch with ``BatchAbortedError`` once more than this share
            (from 0 to below 1) of the last ``ERROR_RATE_WINDOW`` (100) finished items
            failed, whatever their errors (input errors, an item that cannot become a
            request, are not counted). Judged only once that many items finished. ``None``
            (the default): no such stop.
        max_retries: retries per request (default: the client's).
        timeout: per-request timeout (starts when the request gets its slot).
        on_result: ``hook(result, stats)`` called for every finished item (progress bars);
            if it raises, the batch stops and the hook is not called again.
        prepare: ``prepare(index, item) -> (custom_id, body)`` instead of ``prepare_item``.
        raise_fd_limit: raise the soft open-file limit toward the hard one when
            ``concurrency`` needs more descriptors (default: never; either way a concurrency
            the limit cannot hold is lowered to what it can, with a warning on the logger).
        progress: ``True`` for a live progress display on stderr (a ``tqdm.auto`` bar on a
            terminal or in a notebook, else a line every 5 s), or a ``BatchProgress``.
        prices: a ``PriceTable`` (or ``{model: {"input": USD, "output": USD}}`` per million
            tokens over the defaults) for ``cost_usd`` in the results and stats.
        max_cost: a budget in USD: stop (``BudgetExceededError``) before it could be
            exceeded, reserving each in-flight attempt's bound (``batch/bound.py``); every
            model sent needs a known price. The guarantee holds while the server bills no
            more than the bound; an answer billed above it stops the batch
            (``UsageAboveBoundError``).
        media_tokens: under ``max_cost``, the most tokens one media part (image, video,
            audio, PDF) may be billed; without it a request with media is refused unsent.
        message_overhead: under ``max_cost``, the tokens per message the bound adds for the
            chat template (default 8).
        cost_spent: under ``max_cost``, USD already spent against it (a resumed job's records):
            the budget then caps the whole job, not just this run.
        cache: a ``RequestCache`` (or the path of its SQLite file): identical requests are
            answered from it, across runs and jobs, and successful answers stored in it.
        gc_tuning: while a run with ``concurrency`` of 256 or more is going, collect the
            garbage collector's youngest generation every 20,000 new objects instead of 700
            (default off: the thresholds are the process's, so a library leaves them alone;
            the CLI turns it on; ``batch/collector.py`` says why and what it measured).
    """

    concurrency: int
    model: str
    rpm: float | None
    tpm: float | None
    rate_budget: RateBudget | None
    adaptive: bool
    fail_fast: bool
    circuit_breaker: bool
    max_error_rate: float | None
    max_retries: int | None
    timeout: TimeoutLike | NotGiven
    on_result: ResultHook | None
    prepare: Prepare | None
    raise_fd_limit: bool
    gc_tuning: bool
    progress: bool | BatchProgress
    prices: PriceTable | Mapping[str, Any] | None
    max_cost: float | None
    media_tokens: int | None
    message_overhead: int
    cost_spent: float
    cache: RequestCache | str | None


def prepare_item(
    item: Any, index: int, *, model: str, params: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Turn an input item into ``(custom_id, wire body)``.

    Args:
        item: the item (see the module docstring for its forms).
        index: its position in the input; the ``custom_id`` when it has none.
        model: the model for an item that names none.
        params: chat parameters for every item (an item's own values win).

    Raises:
        InvalidRequestError: the item cannot become a request; the message says why.
    """
    if isinstance(item, str):
        messages: Any = [{"role": "user", "content": item}]
        return str(index), request_body(model=model, messages=messages, params=params, stream=False)
    if isinstance(item, ChatRequest):
        body = request_from_model(item)
        body.pop("stream", None)  # the runner reads whole responses, never SSE
        return str(index), body
    if isinstance(item, list):
        return str(index), request_body(model=model, messages=item, params=params, stream=False)
    if isinstance(item, Mapping):
        custom_id = item.get("custom_id")
        if "messages" in item:
            messages = item["messages"]
        elif isinstance(item.get("prompt"), str):
            messages = [{"role": "user", "content": item["prompt"]}]
        else:
            raise InvalidRequestError("item needs 'messages' (a list) or 'prompt' (a string)")
        merged = dict(params)
        for key, value in item.items():
            if key not in _ITEM_KEYS:
                merged[key] = value
        extra = item.get("extra_body")
        body = request_body(
            model=item.get("model") or model,
            messages=messages,
            params=merged,
            stream=False,
            extra_body=extra if isinstance(extra, Mapping) else None,
        )
        return (str(custom_id) if custom_id is not None else str(index)), body
    raise InvalidRequestError(
        f"item must be a prompt string, a list of messages, a dict with 'messages', or a "
        f"ChatRequest; got {type(item).__name__}"
    )


def item_custom_id(item: Any, index: int) -> str:
    """The ``custom_id`` a result of ``item`` carries, even when the item is invalid."""
    if isinstance(item, Mapping) and item.get("custom_id") is not None:
        return str(item["custom_id"])
    return str(index)
