"""From a batch item to a request: ``prepare_item``, the ``BatchOptions`` a runner takes, and
the token estimate the TPM budget charges before a response says what was used.

An item is a prompt string, a list of messages, a dict with ``messages`` or ``prompt`` (and
optionally ``custom_id``, ``model``, ``extra_body`` and chat parameters), or a
``ChatRequest``. Callers that read items from elsewhere (the CLI's and Ray's JSONL jobs) pass
their own ``prepare`` callable, usually a wrapper around ``prepare_item``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import InvalidRequestError
from .._models import ChatRequest
from .._types import ChatParams, NotGiven
from .._wire import request_body, request_from_model

if TYPE_CHECKING:
    from .._http import TimeoutLike
    from .results import ResultHook

__all__ = ["BatchOptions", "Prepare", "estimate_tokens", "item_custom_id", "prepare_item"]

#: ``prepare(index, item) -> (custom_id, wire body)``; raises ``InvalidRequestError``.
Prepare = Callable[[int, Any], tuple[str, dict[str, Any]]]

_ITEM_KEYS: Final = frozenset(("messages", "prompt", "custom_id", "model", "extra_body"))


class BatchOptions(ChatParams, total=False):
    """The options of ``BatchRunner`` (and ``Client.batch``): how to run, plus the
    ``ChatParams`` every item gets (an item's own values win).

    Keys:
        concurrency: most requests in flight at once (default 64).
        model: model for items that name none (default ``"reka-flash"``).
        rpm: requests-per-minute budget (client-side), or ``None``.
        tpm: tokens-per-minute budget, estimated before each call and corrected with ``usage``.
        adaptive: AIMD concurrency (default on): halve the limit on rate-limit 429s and
            timeouts, then grow by one per window of successes, never above ``concurrency``.
        fail_fast: raise the first error and cancel the rest instead of collecting it.
        stop_on_insufficient_credits: stop the whole batch with ``BatchAbortedError`` on an
            out-of-credits 429 (default). ``False`` records it on the item like any other error.
        max_retries: retries per request (default: the client's).
        timeout: per-request timeout (starts when the request gets its slot).
        on_result: ``hook(result, stats)`` called for every finished item (progress bars).
        prepare: ``prepare(index, item) -> (custom_id, body)`` instead of ``prepare_item``.
    """

    concurrency: int
    model: str
    rpm: float | None
    tpm: float | None
    adaptive: bool
    fail_fast: bool
    stop_on_insufficient_credits: bool
    max_retries: int | None
    timeout: TimeoutLike | NotGiven
    on_result: ResultHook | None
    prepare: Prepare | None


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


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A cheap upper-ish estimate: ~4 characters a token, plus the completion budget."""
    chars = 0
    for message in body.get("messages", ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    chars += len(str(part.get("text", part.get("output", ""))))
    return chars // 4 + 1 + int(body.get("max_tokens") or 1024)
