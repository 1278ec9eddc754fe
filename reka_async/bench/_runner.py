"""The load generator: closed and open loops, each request measured, every step summarised.

A closed loop keeps ``concurrency`` requests in flight: that many slots, each sending its
next request as soon as its last one ended. An open loop sends on a schedule fixed before
the step starts (`arrival_offsets`): the dispatcher sleeps until each request's due time,
computed from the step's start, never from the previous sleep's end, so late wake-ups do not
accumulate; a request it could not send on time is sent at once, late, and timed from when
it was due. One task per request keeps a slow answer from holding back the next arrival.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._client import AsyncClient
from .._exceptions import APIStatusError, RekaError
from .._http import DEFAULT_TIMEOUT
from ._client_load import ClientLoad, LoopProbe, client_reasons
from ._config import BenchConfig
from ._metrics import RunResult, find_saturation, load_label, summarize_run
from ._report import BenchReport, environment, report_warnings
from ._sample import Sample
from ._workload import BenchRequest, arrival_gaps, arrival_offsets, build_requests

__all__ = ["Progress", "ProgressHook", "run"]

_PROGRESS_EVERY_S = 0.25


@attrs.frozen(kw_only=True)
class Progress:
    """Where a run is, for a progress line (handed to ``on_progress``).

    Attributes:
        step: The current step, from 1.
        steps: How many steps.
        label: The step's load, e.g. ``"concurrency 16"``.
        done, total: Requests finished and to send in this step (``total`` is None when
            the step runs for a ``duration_s``).
        ok, failed: Of those finished.
        in_flight: Requests sent and not finished.
        elapsed_s: Since the step started.
        finished: Whether the step is over (the last call of a step).
    """

    step: int
    steps: int
    label: str
    done: int
    total: int | None
    ok: int
    failed: int
    in_flight: int
    elapsed_s: float
    finished: bool = False


#: ``on_progress(progress)``: called a few times a second while a step runs, then at its end.
ProgressHook = Callable[[Progress], None]


class _Counts:
    __slots__ = ("done", "failed", "in_flight")

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.in_flight = 0


async def _measure(
    client: AsyncClient,
    request: BenchRequest,
    sample: Sample,
    options: Mapping[str, Any],
    *,
    stream: bool,
    raise_errors: bool = False,
) -> None:
    """Send one request and record its timestamps in ``sample``."""
    now = time.perf_counter
    sample.sent = now()
    try:
        if stream:
            await _stream(client, request, sample, options)
        else:
            response = await client.chat.create(**request.args, **options)
            sample.end = now()
            sample.finish_reason = response.finish_reason
            sample.output_tokens = response.usage.output_tokens
            sample.usage_input_tokens = response.usage.input_tokens
    except RekaError as exc:
        sample.end = now()
        if raise_errors:
            raise
        sample.error_type = type(exc).__name__
        sample.error = str(exc)
        sample.status = exc.status_code if isinstance(exc, APIStatusError) else None


async def _stream(
    client: AsyncClient, request: BenchRequest, sample: Sample, options: Mapping[str, Any]
) -> None:
    now = time.perf_counter
    times = sample.token_times
    first: float | None = None
    last: float | None = None
    answer_events = 0
    reasoning = 0
    finish: str | None = None
    stream = client.chat.create_stream(**request.args, **options)
    async with stream:
        async for chunk in stream:
            t = now()  # first thing: the event's arrival as a caller sees it
            if chunk.delta:
                times.append(t)
                if first is None:
                    first = t
                last = t
                answer_events += 1
            elif chunk.responses:
                thought = chunk.responses[0].chunk.reasoning_content
                if thought and len(thought) > reasoning:
                    reasoning = len(thought)
                    times.append(t)
                    if sample.first_reasoning is None:
                        sample.first_reasoning = t
            if chunk.responses and chunk.responses[0].finish_reason is not None:
                finish = chunk.responses[0].finish_reason
        usage = stream.usage
    sample.end = now()
    sample.first_token, sample.last_token = first, last
    sample.answer_events = answer_events
    sample.finish_reason = finish
    if usage is not None:
        sample.output_tokens = usage.output_tokens or None
        sample.usage_input_tokens = usage.input_tokens or None
    if first is None:
        sample.error_type = "NoTokens"
        sample.error = "the stream ended without any answer text"


class _Step:
    """One load step: its samples, counters, progress and client probe."""

    def __init__(
        self,
        client: AsyncClient,
        config: BenchConfig,
        requests: Sequence[BenchRequest],
        options: Mapping[str, Any],
    ) -> None:
        self.client = client
        self.config = config
        self.requests = requests
        self.options = options
        self.counts = _Counts()
        self.samples: list[Sample] = []

    async def send(self, index: int, scheduled: float | None) -> None:
        request = self.requests[index % len(self.requests)]  # cycled under a duration
        sample = Sample(
            index=index,
            scheduled=time.perf_counter() if scheduled is None else scheduled,
            input_tokens=request.input_tokens,
        )
        self.samples.append(sample)
        counts = self.counts
        counts.in_flight += 1
        try:
            await _measure(self.client, request, sample, self.options, stream=self.config.stream)
        finally:
            counts.in_flight -= 1
            counts.done += 1
            counts.failed += not sample.ok

    async def closed(self, concurrency: int, origin: float) -> None:
        duration = self.config.duration_s
        deadline = None if duration is None else origin + duration
        indices: Iterator[int] = (
            iter(range(len(self.requests))) if deadline is None else itertools.count()
        )
        ramp = self.config.ramp_up_s

        async def slot(k: int) -> None:
            if ramp:
                await _sleep_until(origin + ramp * k / concurrency)
            while deadline is None or time.perf_counter() < deadline:
                index = next(indices, None)  # shared: each slot takes the next request left
                if index is None:
                    return
                await self.send(index, None)

        slots = concurrency if deadline is not None else min(concurrency, len(self.requests))
        await _all([slot(k) for k in range(slots)])

    async def open(self, rate: float, origin: float) -> None:
        config = self.config
        offsets: Iterable[float]
        if config.duration_s is None:
            offsets = arrival_offsets(
                len(self.requests), rate, config.arrivals, config.seed, config.burstiness
            )
        else:  # every arrival due before the end of the step
            end: float = config.duration_s
            times: Iterable[float]
            if config.arrivals == "constant":  # i / rate, as arrival_offsets: no drift
                times = (i / rate for i in itertools.count())
            else:
                gaps = arrival_gaps(rate, config.arrivals, config.seed, config.burstiness)
                times = itertools.accumulate(gaps, initial=0.0)
            offsets = itertools.takewhile(lambda t: t < end, times)
        gate = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None

        async def capped(index: int, due: float) -> None:
            assert gate is not None
            async with gate:  # the wait for a slot counts in the latency and the lag
                await self.send(index, due)

        send = self.send if gate is None else capped
        tasks: list[asyncio.Task[None]] = []
        try:
            for index, offset in enumerate(offsets):
                due = origin + offset
                await _sleep_until(due)
                tasks.append(asyncio.ensure_future(send(index, due)))
        except BaseException:
            await _cancel(tasks)
            raise
        await _all(tasks)


async def _cancel(tasks: Sequence[asyncio.Future[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _all(work: Sequence[Coroutine[Any, Any, None] | asyncio.Future[None]]) -> None:
    """Run to the end; on an error or a cancellation, cancel the rest and wait for them."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        await _cancel(tasks)
        raise


async def _sleep_until(due: float) -> None:
    delay = due - time.perf_counter()
    if delay > 0.0:
        await asyncio.sleep(delay)


async def _run_step(
    step: _Step, load: float, number: int, steps: int, on_progress: ProgressHook | None
) -> RunResult:
    config = step.config
    label = load_label(config.load_kind, load)
    probe = LoopProbe()

    def report(origin: float, finished: bool = False) -> None:
        if on_progress is not None:
            c = step.counts
            on_progress(
                Progress(
                    step=number,
                    steps=steps,
                    label=label,
                    done=c.done,
                    total=len(step.requests) if config.duration_s is None else None,
                    ok=c.done - c.failed,
                    failed=c.failed,
                    in_flight=c.in_flight,
                    elapsed_s=time.perf_counter() - origin,
                    finished=finished,
                )
            )

    async def ticker(origin: float) -> None:
        while True:
            report(origin)
            await asyncio.sleep(_PROGRESS_EVERY_S)

    # What exists before the step is moved out of the collector's way: its full collections
    # would otherwise walk it, pausing the loop in the middle of the measurement.
    gc.collect()
    gc.freeze()
    probe.start()
    origin = time.perf_counter()
    progress = asyncio.ensure_future(ticker(origin)) if on_progress is not None else None
    try:
        if config.rate:
            await step.open(load, origin)
        else:
            await step.closed(int(load), origin)
    finally:
        if progress is not None:
            await _cancel([progress])
        cpu, loop_lag = await probe.stop()
        gc.unfreeze()
    report(origin, finished=True)
    samples = sorted(step.samples, key=lambda s: s.index)
    result = summarize_run(
        samples,
        load_kind=config.load_kind,
        load=load,
        origin=origin,
        arrivals=config.arrivals if config.rate else None,
        slo=config.slo,
    )
    reasons = client_reasons(cpu, loop_lag, result.schedule_lag_ms)
    client = ClientLoad(cpu_percent=cpu, loop_lag_ms=loop_lag, reasons=reasons)
    return attrs.evolve(result, client=client)


def _pool_size(config: BenchConfig) -> int:
    if config.rate:
        if config.max_concurrency:
            return config.max_concurrency
        if config.duration_s is None:
            return config.num_requests
        # Under a duration the count is not known before: the expected arrivals of the
        # fastest step (more may still wait for a connection, timed in their latency).
        return max(config.num_requests, math.ceil(max(config.loads) * config.duration_s))
    return int(max(config.loads))


async def run(
    config: BenchConfig,
    *,
    api_key: str | None = None,
    client: AsyncClient | None = None,
    on_progress: ProgressHook | None = None,
    allow_insecure_http: bool = False,
) -> BenchReport:
    """Run a benchmark: the warm-up, then every load step in ascending order.

    Args:
        config: What to run.
        api_key: The key (default ``REKA_API_KEY``); not used with ``client``.
        client: An open client to send through instead of one made for the run (its pool
            must hold the most requests in flight, or the wait for a connection shows in
            the latencies).
        on_progress: Called a few times a second with a `Progress` (for a progress line).
        allow_insecure_http: Allow ``http://`` to a host that is not loopback.

    Returns:
        The `BenchReport`: every step's figures and samples, the saturation point, the
        warnings.

    Raises:
        MissingAPIKeyError: No key given and ``REKA_API_KEY`` unset.
        ValueError: The prompts file has a line that cannot be a request.
        OSError: The prompts file cannot be read.
        RekaError: The first warm-up request failed (its error, as the client raised it).
    """
    requests = build_requests(config)
    started = time.time()
    notes: list[str] = []
    if client is None:
        async with AsyncClient(
            api_key,
            config.base_url,
            api=config.api,
            max_retries=config.max_retries,
            timeout=config.timeout_s if config.timeout_s is not None else DEFAULT_TIMEOUT,
            max_connections=_pool_size(config),
            allow_insecure_http=allow_insecure_http,
        ) as own:
            config = attrs.evolve(config, base_url=own.base_url)
            runs = await _run_all(own, config, requests, on_progress)
    else:
        config = attrs.evolve(config, base_url=client.base_url)
        if client.max_connections < _pool_size(config):
            notes.append(
                f"the client's pool holds {client.max_connections} connections, fewer than "
                f"the {_pool_size(config)} requests that may be in flight: the wait for a "
                f"connection is in the latencies"
            )
        runs = await _run_all(client, config, requests, on_progress)
    return BenchReport(
        config=config,
        runs=tuple(runs),
        saturation=find_saturation(runs) if len(runs) > 1 else None,
        environment=environment(started),
        warnings=(*notes, *report_warnings(runs)),
        wall_s=time.time() - started,
    )


async def _run_all(
    client: AsyncClient,
    config: BenchConfig,
    requests: Sequence[BenchRequest],
    on_progress: ProgressHook | None,
) -> list[RunResult]:
    options: dict[str, Any] = {"max_retries": config.max_retries}
    if client.api != config.api:
        # Only when the client's default differs: a model or option that lives on the
        # compatible endpoint only (Research) is then still routed there by the client.
        options["api"] = config.api
    if config.timeout_s is not None:
        options["timeout"] = config.timeout_s
    for i in range(config.warmup):
        sample = Sample(index=-1 - i, scheduled=time.perf_counter())
        request = requests[i % len(requests)]
        await _measure(client, request, sample, options, stream=config.stream, raise_errors=i == 0)
    runs = []
    loads = config.loads
    for number, load in enumerate(loads, 1):
        step = _Step(client, config, requests, options)
        runs.append(await _run_step(step, load, number, len(loads), on_progress))
    return runs
