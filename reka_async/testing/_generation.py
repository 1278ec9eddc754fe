"""The mock's generation model: when each token of an answer leaves the server.

With a `GenerationModel`, `MockRekaServer` behaves like an inference server whose timing is
known exactly, so a benchmark can be checked against it:

* **capacity**: at most ``capacity`` generations run at once; the others wait in arrival
  order (first come, first served) for a free slot;
* **time to first token** = ``ttft_s + prefill_s_per_token * input_tokens``, counted from
  the moment the generation gets its slot (so a queued request's TTFT also holds its wait);
* then **one token every** ``tpot_s``; token *k* (0-based) of a generation that started at
  *t0* is due at ``t0 + TTFT + k * tpot_s``. The deadlines are absolute: a late wake-up
  delays the token it was for, never the ones after it (chained ``sleep(tpot)`` calls would
  add every wake-up's lateness to all later tokens and drift);
* **jitter** (optional): each delay (the TTFT and every token gap) is multiplied by a
  factor drawn uniformly from ``[1 - jitter, 1 + jitter]`` (seeded), so means are unchanged;
* **answers run to** ``max_tokens``: a plain-text reply shorter than the request's
  ``max_tokens`` is continued with filler words up to it and finishes with ``"length"``, as
  a benchmark server does with ``ignore_eos``; so ``max_tokens`` sets the output length.
  Tool calls, Research and structured answers keep their length.

Tokens are the mock's words (whitespace-separated), as in ``usage``. A stream's events are
sent at the deadline of the last token they carry (an event that carries no new text, such
as a usage-only trailer, goes with the event before it); a plain answer is sent whole at the
deadline of its last token. Fault responses are not paced.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from ._json import loads
from ._replies import Reply

__all__ = ["GenerationModel", "Generator", "token_offsets", "token_weights"]

#: The words a reply is continued with up to ``max_tokens`` (one token each).
FILLER: Final = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


@dataclasses.dataclass(frozen=True)
class GenerationModel:
    """How the mock generates (see the module docstring of ``_generation``).

    Args:
        ttft_s: Base delay before the first token, in seconds.
        prefill_s_per_token: Added to the TTFT per input token (the mock's word count of
            every message).
        tpot_s: Time per output token after the first, in seconds.
        capacity: The most generations at once; the rest wait in arrival order. None: no
            limit.
        jitter: Relative jitter of every delay, from 0 (none) to 1.
        seed: Seed of the jitter.

    Raises:
        ValueError: A delay is negative, ``capacity`` is below 1 or ``jitter`` is outside
            [0, 1].
    """

    ttft_s: float = 0.0
    prefill_s_per_token: float = 0.0
    tpot_s: float = 0.0
    capacity: int | None = None
    jitter: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("ttft_s", "prefill_s_per_token", "tpot_s"):
            value = getattr(self, name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"generation {name} must be a number >= 0, got {value!r}")
        if self.capacity is not None and (isinstance(self.capacity, bool) or self.capacity < 1):
            raise ValueError(f"generation capacity must be at least 1, got {self.capacity!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"generation jitter must be between 0 and 1, got {self.jitter!r}")


def token_offsets(
    model: GenerationModel, input_tokens: int, output_tokens: int, rng: random.Random | None
) -> list[float]:
    """When each output token is due, in seconds after the generation got its slot.

    Args:
        model: The timing.
        input_tokens: The prompt's length (for the prefill time).
        output_tokens: How many tokens to schedule (at least one offset is returned: the
            first token's, which an empty answer is sent at).
        rng: The jitter's random source (needed only when ``model.jitter`` is set).

    Returns:
        ``max(output_tokens, 1)`` non-decreasing offsets.
    """
    count = max(output_tokens, 1)
    first = model.ttft_s + model.prefill_s_per_token * input_tokens
    tpot = model.tpot_s
    jitter = model.jitter
    if not jitter or rng is None:
        # Multiplied, not summed: offset k carries no rounding error from the ones before.
        return [first + k * tpot for k in range(count)]
    offsets = [first * rng.uniform(1.0 - jitter, 1.0 + jitter)]
    for _ in range(count - 1):
        offsets.append(offsets[-1] + tpot * rng.uniform(1.0 - jitter, 1.0 + jitter))
    return offsets


def _words_added(fragment: str, inside_word: bool) -> tuple[int, bool]:
    """Words that ``fragment`` starts after text ending inside a word (or not), and whether
    the text then ends inside a word."""
    if not fragment:
        return 0, inside_word
    words = len(fragment.split())
    if inside_word and not fragment[0].isspace() and words:
        words -= 1  # it continues the word before it
    return words, not fragment[-1].isspace()


def token_weights(payloads: Sequence[bytes], *, native_cumulative: bool) -> list[int]:
    """How many new tokens (words) each event of a stream carries.

    Text counted: the answer's content, the reasoning (Research) and tool-call arguments.

    Args:
        payloads: The JSON payload of every event.
        native_cumulative: The events are native ones whose ``chunk.content`` is the text so
            far (else native deltas, or OpenAI ``choices[].delta`` events).

    Returns:
        One count per payload.
    """
    weights: list[int] = []
    inside: dict[str, bool] = collections.defaultdict(bool)
    content_so_far = 0
    for payload in payloads:
        data = loads(payload)
        fragments: list[tuple[str, str]] = []
        for item in data.get("responses") or ():
            chunk = item.get("chunk") or {}
            content = chunk.get("content")
            if isinstance(content, str) and content:
                if native_cumulative:
                    fragments.append(("content", content[content_so_far:]))
                    content_so_far = len(content)
                else:
                    fragments.append(("content", content))
            for i, call in enumerate(chunk.get("tool_calls") or ()):
                fragments.append((f"tool{i}", str(call.get("parameters", ""))))
            break  # the first answer only, as the mock sends one
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            for key in ("reasoning_content", "content"):
                text = delta.get(key)
                if isinstance(text, str):
                    fragments.append((key, text))
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    fragments.append((f"tool{call.get('index', 0)}", arguments))
            break
        weight = 0
        for channel, fragment in fragments:
            added, inside[channel] = _words_added(fragment, inside[channel])
            weight += added
        weights.append(weight)
    return weights


class _Gate:
    """At most ``capacity`` holders at once; the others wait first come, first served."""

    __slots__ = ("active", "capacity", "waiters")

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.active = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self.capacity is None or (self.active < self.capacity and not self.waiters):
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # release() handed its slot over: `active` already counts us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived together with the cancellation
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it
                    self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the oldest waiter
                return
        self.active -= 1


class Generator:
    """A server's generation model at work: its slots, its jitter and its counters.

    Attributes:
        model: The `GenerationModel`.
        started: Generations that got a slot since start or `reset_stats`.
        max_active: The most generations that ran at once.
        max_waiting: The most requests that waited for a slot at once.
    """

    __slots__ = ("_gate", "_rng", "max_active", "max_waiting", "model", "started")

    def __init__(self, model: GenerationModel) -> None:
        self.model = model
        self._gate = _Gate(model.capacity)
        self._rng = random.Random(model.seed)
        self.started = 0
        self.max_active = 0
        self.max_waiting = 0

    @property
    def active(self) -> int:
        """Generations running now."""
        return self._gate.active

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._gate.waiters)

    def reset_stats(self) -> None:
        """Restart the counters from the current state."""
        self.started = 0
        self.max_active = self.active
        self.max_waiting = self.waiting

    def __repr__(self) -> str:
        return (
            f"<Generator {self.model} active={self.active} waiting={self.waiting} "
            f"max_active={self.max_active} started={self.started}>"
        )

    def fill(self, reply: Reply, body: dict[str, Any]) -> Reply:
        """Continue a plain-text reply with filler words up to the request's ``max_tokens``."""
        if reply.tool_calls is not None or reply.research is not None:
            return reply
        if reply.finish_reason != "stop" or isinstance(body.get("response_format"), dict):
            return reply
        limit = body.get("max_tokens")
        if limit is None:
            limit = body.get("max_completion_tokens")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= reply.output_tokens:
            return reply
        missing = limit - reply.output_tokens
        words = " ".join(FILLER[i % len(FILLER)] for i in range(missing))
        text = reply.text
        if text and not text[-1].isspace():
            text += " "
        return dataclasses.replace(
            reply, text=text + words, output_tokens=limit, finish_reason="length"
        )

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for a generation slot; yields the loop time the generation starts at."""
        gate = self._gate
        waiting = len(gate.waiters) + (
            1 if gate.capacity is not None and gate.active >= gate.capacity else 0
        )
        self.max_waiting = max(self.max_waiting, waiting)
        await gate.acquire()
        self.started += 1
        self.max_active = max(self.max_active, gate.active)
        try:
            yield asyncio.get_running_loop().time()
        finally:
            gate.release()

    def offsets(self, input_tokens: int, output_tokens: int) -> list[float]:
        """`token_offsets` with this server's model and jitter source."""
        return token_offsets(self.model, input_tokens, output_tokens, self._rng)

    def stream_deadlines(
        self, start: float, reply: Reply, payloads: Sequence[bytes], *, native_cumulative: bool
    ) -> list[float]:
        """The loop time at which each event of a stream is due."""
        weights = token_weights(payloads, native_cumulative=native_cumulative)
        offsets = self.offsets(reply.input_tokens, sum(weights))
        deadlines: list[float] = []
        sent = 0
        due = start + offsets[0]
        for weight in weights:
            if weight:
                sent += weight
                due = start + offsets[sent - 1]
            deadlines.append(due)
        return deadlines

    async def generate(self, start: float, reply: Reply) -> None:
        """Wait until a plain answer's last token is due (reasoning tokens included)."""
        tokens = reply.output_tokens
        if reply.research is not None:
            tokens += len(reply.research.reasoning.split())
        due = start + self.offsets(reply.input_tokens, tokens)[-1]
        delay = due - asyncio.get_running_loop().time()
        if delay > 0.0:
            await asyncio.sleep(delay)
