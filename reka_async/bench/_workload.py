"""The requests a benchmark sends and when: synthetic prompts or a prompts file, and the
arrival schedule of an open loop.

A synthetic prompt of *n* tokens is *n* random three-letter words (seeded): *n* words of
three letters and their spaces are ``4n - 1`` characters, so the batch runner's estimate
(about four characters a token) gives exactly *n*, and so does a server that counts words
(the mock). Every prompt differs, so a server's prefix cache does not shorten the prefill.
Its ``max_tokens`` is drawn from the output distribution; the server may stop earlier (the
mock's generation model always runs to it), and the output tokens counted are ``usage``'s.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from .._exceptions import InvalidRequestError
from ..batch import estimate_tokens, prepare_item
from ._config import Arrivals, BenchConfig

__all__ = [
    "BenchRequest",
    "arrival_gaps",
    "arrival_offsets",
    "build_requests",
    "estimate_input_tokens",
]

#: Three-letter words: a synthetic prompt of n words is exactly n tokens by the estimate.
_WORD_LIST: Final = (
    "the and for are but not you all any can had her was one our out day get has him his "
    "how man new now old see two way who boy did its let put say she too use art bed cup "
    "dog egg fan gum hat ink jar key log map net oak pen rug sun toy van web yak zip"
)
_WORDS: Final = tuple(_WORD_LIST.split())
_ITEM_ONLY: Final = frozenset(("prompt", "custom_id"))


@attrs.frozen(kw_only=True)
class BenchRequest:
    """One request of the workload.

    Attributes:
        args: The keyword arguments of ``chat.create``/``create_stream``: ``messages``,
            ``model``, ``max_tokens`` and any chat parameters.
        input_tokens: The prompt's length as the batch runner estimates it.
    """

    args: Mapping[str, Any]
    input_tokens: int


def estimate_input_tokens(messages: Any) -> int:
    """A conversation's length in tokens, estimated as ``BatchRunner`` estimates it.

    Its TPM budget charges ``estimate_tokens``: about four characters a token for the
    messages, plus ``max_tokens``; this is the messages' part alone.
    """
    return estimate_tokens({"messages": messages, "max_tokens": 1}) - 1


def _synthetic(config: BenchConfig) -> list[BenchRequest]:
    rng = random.Random(f"{config.seed}:prompts")
    lengths = config.synthetic_input
    outputs = config.synthetic_output
    requests = []
    for _ in range(config.num_requests):
        prompt = " ".join(rng.choice(_WORDS) for _ in range(lengths.sample(rng)))
        messages = [{"role": "user", "content": prompt}]
        args: dict[str, Any] = {**config.params, "messages": messages, "model": config.model}
        if outputs is not None:
            args["max_tokens"] = outputs.sample(rng)
        requests.append(BenchRequest(args=args, input_tokens=estimate_input_tokens(messages)))
    return requests


def _file_items(path: str) -> list[tuple[int, Any]]:
    """``(line number, item)`` of every non-blank line: JSON objects, or plain prompts."""
    with open(path, encoding="utf-8") as f:
        lines = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no prompts (the file is empty)")
    if not lines[0][1].startswith("{"):
        return lines  # plain text: one prompt a line
    items = []
    for number, line in lines:
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(item, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        items.append((number, item))
    return items


def _from_file(config: BenchConfig, path: str) -> list[BenchRequest]:
    rng = random.Random(f"{config.seed}:outputs")
    outputs = config.output_tokens
    prepared: list[BenchRequest] = []
    for index, (number, item) in enumerate(_file_items(path)):
        try:  # the batch runner's checks, so a bad line fails here, not mid-run
            prepare_item(item, index, model=config.model, params=config.params)
        except InvalidRequestError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
        if isinstance(item, str):
            item = {"prompt": item}
        args: dict[str, Any] = {**config.params, "model": config.model}
        args.update((k, v) for k, v in item.items() if k not in _ITEM_ONLY)
        if "messages" not in item:
            args["messages"] = [{"role": "user", "content": item["prompt"]}]
        if outputs is not None and args.get("max_tokens") is None:
            args["max_tokens"] = outputs.sample(rng)
        tokens = estimate_input_tokens(args["messages"])
        prepared.append(BenchRequest(args=args, input_tokens=tokens))
    return prepared


def build_requests(config: BenchConfig) -> list[BenchRequest]:
    """The ``num_requests`` requests every step sends (the same ones, in the same order).

    Raises:
        ValueError: The prompts file has no prompts or a line that cannot be a request
            (``path:line: why``).
        OSError: The prompts file cannot be read.
    """
    if config.prompts is None:
        return _synthetic(config)
    pool = _from_file(config, config.prompts)
    return [pool[i % len(pool)] for i in range(config.num_requests)]


def arrival_offsets(
    count: int, rate: float, arrivals: Arrivals, seed: int, burstiness: float = 1.0
) -> list[float]:
    """When each request of an open loop is due, in seconds after the step starts.

    ``"constant"``: every ``1 / rate`` seconds. ``"poisson"``: gaps drawn from the
    exponential distribution of mean ``1 / rate`` (seeded by ``seed`` and the rate, so a
    rerun sends on the same schedule); with ``burstiness`` other than 1, from the gamma
    distribution of that shape and the same mean, as vLLM's ``--burstiness`` (below 1:
    burstier, above 1: more even). The first request is due at once.
    """
    if arrivals == "constant":
        return [i / rate for i in range(count)]
    gaps = arrival_gaps(rate, arrivals, seed, burstiness)
    offsets = [0.0]
    for _ in range(count - 1):
        offsets.append(offsets[-1] + next(gaps))
    return offsets[:count]


def arrival_gaps(
    rate: float, arrivals: Arrivals, seed: int, burstiness: float = 1.0
) -> Iterator[float]:
    """The gaps between an open loop's arrivals, without end (see `arrival_offsets`)."""
    if arrivals == "constant":
        return itertools.repeat(1.0 / rate)
    rng = random.Random(f"{seed}:arrivals:{rate!r}")
    if burstiness == 1.0:  # exactly the exponential draws of earlier versions: same schedule
        return (rng.expovariate(rate) for _ in itertools.count())
    scale = 1.0 / (rate * burstiness)  # mean shape * scale = 1 / rate
    return (rng.gammavariate(burstiness, scale) for _ in itertools.count())
