"""`RekaChatMapper` (the ``map_batches`` UDF) and `map_chat` (it, applied with good settings)."""

from __future__ import annotations

import asyncio
import inspect
import uuid
import warnings
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..._client import AsyncClient
from ..._exceptions import InvalidRequestError
from ..._http.options import check_max_retries
from ..._http.pacing import Pacer
from ...batch import BatchStats, CostBudget, PriceTable
from ...batch.bound import DEFAULT_MESSAGE_OVERHEAD
from ._common import (
    check_params,
    check_positive_int,
    check_positive_or_none,
    check_ray_version,
    default_batch_size,
    require,
)
from ._cost import SharedCostBudget, create_cost_ledger
from ._engine import Engine
from ._limiter import SharedBudget, SharedPacing, create_rate_limiter
from ._rows import batch_columns, input_table, parse_rows, results_table
from ._secrets import Secret, resolve_key

__all__ = ["RekaChatMapper", "map_chat"]


class RekaChatMapper:
    """A callable class for ``Dataset.map_batches``: one chat request per row.

    Use it through `map_chat`, or directly (Ray 2.5x spelling)::

        ds.map_batches(
            RekaChatMapper,
            fn_constructor_kwargs={"model": "reka-flash", "concurrency_per_actor": 64,
                                   "api_key": Secret(key)},
            batch_format="pyarrow", batch_size=16, num_cpus=0.5,
            compute=ray.data.ActorPoolStrategy(size=4, max_concurrent_calls_per_actor=2),
        )

    Ray Data runs up to 4 batches of a block at once on the actor's event loop, times the
    blocks the actor works on at once; keep ``batch_size`` times that at or above
    ``concurrency_per_actor`` so the actor's requests stay busy.

    Input columns (any batch format: ``"pyarrow"``, ``"numpy"`` or ``"pandas"``):
    ``prompt`` (a string), or ``messages`` (a list of messages, or its JSON), or ``request``
    (a JSON object in the ``reka-async batch`` input-line format, parameters included);
    optional ``custom_id`` (echoed back) and ``line`` (used in error messages and records).

    Output: a pyarrow Table with `OUTPUT_COLUMNS`, one row per input row, in order:
    ``custom_id``, ``text`` (null on failure), ``error_type``/``error_message`` (null on
    success), ``input_tokens``/``output_tokens`` (null on failure), ``latency_s``,
    ``attempts`` and ``ok``. A failed request never fails the block.

    The client, runner and limiter state are built lazily on the first call, on the event
    loop Ray runs the actor's async batches on, and are shared by all batches the actor runs
    at once: at most ``concurrency_per_actor`` requests are in flight per actor. Through
    Ray's entry point (``__call__``) the client is closed whenever the actor's last batch in
    flight ends; `process` leaves it open until `aclose`. The next client carries on with
    the pacing of the one before (``AsyncClient(pacer=...)``: the rate learned from the
    server, the key's window, a pause), and with a shared actor, with the job's.

    Args:
        model: model for rows naming none.
        concurrency_per_actor: most requests in flight per actor (all its batches together).
        api_key: the key (a `Secret` or a string); default ``REKA_API_KEY`` in the actor.
        base_url: API base URL (default ``REKA_BASE_URL``, else the public API).
        rpm: the job's requests per minute, split evenly: each actor allows
            ``rpm / num_actors``.
        tpm: the job's tokens per minute, split the same way.
        num_actors: how many actors share ``rpm``/``tpm``.
        limiter: a shared actor from `create_rate_limiter` (instead of ``rpm``/``tpm``):
            its budget, if it holds one, and the pacing learned from the server, shared
            with every actor using it (its rate and pauses; see ``_limiter``).
        max_retries: retries per request.
        timeout_s: total seconds per request (default: the client's timeout).
        adaptive: AIMD concurrency per actor (see ``BatchRunner``).
        circuit_breaker: the ``BatchRunner`` rule (a refused key, a forbidden one, an account
            out of credits, a server wait longer than the client's): after such an error, send
            nothing more from this actor; later rows get ``error_type="BatchAbortedError"``
            (not sent). Default off here, unlike ``BatchRunner``: a Ray Data map must return
            a row for every input, so each error is recorded on its row unless you ask for
            the stop (``run_ray_job`` asks, as the CLI does).
        include_record: add a ``record`` column: the row's ``reka-async batch`` output
            record as a JSON string.
        keep_input_columns: append the input columns to the output (ours win on a clash).
        max_cost: the job's budget in USD, kept across every actor by ``cost_ledger`` (the
            bound and the guarantee of ``run_job``'s ``max_cost``; `map_chat` makes the
            ledger). When it stops the job, rows not answered get
            ``error_type="BatchAbortedError"`` (not sent).
        cost_ledger: the job's cost actor (required with ``max_cost``).
        prices: as in ``BatchRunner``, under ``max_cost``.
        media_tokens: as in ``BatchRunner``, under ``max_cost``.
        message_overhead: as in ``BatchRunner``, under ``max_cost``.
        **params: chat parameters (``max_tokens``, ``temperature``, ...) for every row; a
            ``request`` row's own values win.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: invalid ``params`` or ``model``.
        ValueError: invalid sizes or limits.
        ImportError: Ray older than 2.40 is installed (its ``map_batches`` refuses or can
            hang on this class's async generator ``__call__``).
    """

    def __init__(
        self,
        *,
        model: str = "reka-flash",
        concurrency_per_actor: int = 32,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        num_actors: int = 1,
        limiter: Any = None,
        max_retries: int = 2,
        timeout_s: float | None = None,
        adaptive: bool = True,
        circuit_breaker: bool = False,
        include_record: bool = False,
        keep_input_columns: bool = False,
        max_cost: float | None = None,
        cost_ledger: Any = None,
        prices: PriceTable | Mapping[str, Any] | None = None,
        media_tokens: int | None = None,
        message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
        **params: Any,
    ) -> None:
        check_ray_version()
        check_positive_int("concurrency_per_actor", concurrency_per_actor)
        check_positive_int("num_actors", num_actors)
        check_positive_or_none(rpm=rpm, tpm=tpm, timeout_s=timeout_s)
        if limiter is not None and (rpm is not None or tpm is not None):
            raise ValueError(
                "pass either limiter= (a shared budget) or rpm=/tpm= (split per actor), "
                "not both; give the budget to create_rate_limiter(rpm=..., tpm=...)"
            )
        check_max_retries(max_retries)
        check_params(model, params)
        self._key = resolve_key(api_key)
        self._model = model
        self._concurrency = concurrency_per_actor
        self._base_url = base_url
        self._rpm = rpm / num_actors if rpm is not None else None
        self._tpm = tpm / num_actors if tpm is not None else None
        self._limiter = limiter
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._adaptive = adaptive
        self._circuit_breaker = circuit_breaker
        self._include_record = include_record
        self._keep_input_columns = keep_input_columns
        self._params = dict(params)
        self._prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self._cost: tuple[Any, float, int | None, int] | None = None
        if max_cost is not None:
            if cost_ledger is None:
                raise ValueError(
                    "max_cost is the job's budget across actors: pass cost_ledger= too (or "
                    "use map_chat, which makes it)"
                )
            # Validate here, on the driver: the same checks as BatchRunner's max_cost.
            CostBudget(
                max_cost,
                self._prices,
                media_tokens=media_tokens,
                message_overhead=message_overhead,
            )
            if self._prices.get(model) is None:
                raise InvalidRequestError(
                    f"max_cost: no price is known for model {model!r}, so the budget cannot "
                    f"be kept; give its price (prices={{{model!r}: {{'input': USD, "
                    f"'output': USD}}}} per million tokens)"
                )
            self._cost = (cost_ledger, float(max_cost), media_tokens, message_overhead)
        self._engine: Engine | None = None
        self._calls = 0  # batches in flight through __call__ (the last one closes the client)
        # The shared limiter's budget (rpm, tpm), asked once; and this actor's name among
        # those sharing the pacing (one per mapper, whatever clients it makes).
        self._limits: tuple[Any, ...] | None = None
        self._member = uuid.uuid4().hex
        # The pacing of this actor's clients: each client made afresh carries on with it
        # (the rate learned, the window, the pause), instead of starting over unpaced.
        self._pacer: Pacer | None = None

    def __repr__(self) -> str:
        if self._limiter is not None:
            limits = "limiter=shared"
        else:
            limits = f"rpm={self._rpm} tpm={self._tpm}"
        return (
            f"<RekaChatMapper model={self._model!r} "
            f"concurrency_per_actor={self._concurrency} {limits}>"
        )

    @property
    def stats(self) -> BatchStats | None:
        """This actor's live counters (``None`` before the first batch)."""
        return self._engine.runner.stats if self._engine is not None else None

    async def __call__(self, batch: Any) -> AsyncIterator[Any]:
        """Ray Data's entry point (an async generator of one output table per batch).

        The client is closed when the actor's last batch in flight ends, before the table
        is handed over: Ray Data has no dependable hook at an actor's end (it drops the UDF
        from another thread, or not at all), and a finalizer must not close a client on a
        loop. The next batch opens a new client (and its limit starts afresh).
        """
        self._calls += 1
        try:
            table = await self.process(batch)
        finally:
            self._calls -= 1
            if self._calls == 0:
                await self.aclose()
        yield table

    async def process(self, batch: Any) -> Any:
        """Run one batch and return its output as a pyarrow Table (see the class docs)."""
        pa = require("pyarrow")
        columns = batch_columns(batch)
        rows = parse_rows(columns) if columns else []
        results = await (await self._get_engine()).run(rows) if rows else []
        table = results_table(pa, results, rows, self._include_record)
        if self._keep_input_columns and columns:
            inputs = input_table(pa, batch, columns)
            for name in inputs.column_names:
                if name not in table.column_names:
                    table = table.append_column(name, inputs.column(name))
        return table

    async def _get_engine(self) -> Engine:
        loop = asyncio.get_running_loop()
        engine = self._engine
        if engine is None and self._limiter is not None and self._limits is None:
            # Whether the shared actor holds a budget (or the pacing alone), asked once: a
            # client reserves from a budget on every attempt, and from none it need not.
            self._limits = tuple(await self._limiter.limits.remote())
            engine = self._engine  # another batch may have made it meanwhile
        if engine is not None:
            if engine.loop is not loop:
                raise RuntimeError(
                    "RekaChatMapper is bound to the event loop of its first call; "
                    "create one mapper per event loop"
                )
            return engine
        options: dict[str, Any] = {}
        if self._timeout_s is not None:
            options["timeout"] = self._timeout_s
        budget = None
        pacing = None
        if self._limiter is not None:
            pacing = SharedPacing(self._limiter, self._member)
            limits = self._limits
            if limits is None:
                budget = SharedBudget(self._limiter)
            elif limits[0] or limits[1]:
                rpm, tpm, request_chunk, token_chunk = limits
                budget = SharedBudget(
                    self._limiter, (rpm, tpm, float(request_chunk), float(token_chunk))
                )
        client = AsyncClient(
            self._key.get_secret_value(),
            self._base_url,
            max_retries=self._max_retries,
            max_connections=self._concurrency,
            rate_budget=budget,
            pacer=self._pacer,
            **options,
        )
        self._pacer = client.pacer
        cost = None
        if self._cost is not None:
            ledger, max_cost, media_tokens, message_overhead = self._cost
            cost = SharedCostBudget(
                ledger,
                max_cost,
                self._prices,
                media_tokens=media_tokens,
                message_overhead=message_overhead,
            )
        self._engine = Engine(
            client,
            budget=budget,
            cost=cost,
            pacing=pacing,
            circuit_breaker=self._circuit_breaker,
            model=self._model,
            params=self._params,
            concurrency=self._concurrency,
            rpm=self._rpm,
            tpm=self._tpm,
            adaptive=self._adaptive,
            prices=self._prices,
        )
        return self._engine

    async def aclose(self) -> None:
        """Stop the request stream and close the client (idempotent)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.aclose()

    def __del__(self) -> None:
        """Warn about a mapper that was not closed and cancel its request stream.

        Ray Data drops the UDF when the actor exits gracefully, from a thread other than the
        one running the actor's event loop, and never calls `aclose`. A finalizer must not
        block or wait on a loop, so this only cancels the dispatcher task (thread-safely,
        without waiting for it: the stream then cancels its in-flight requests on its own
        loop) and warns with ``ResourceWarning`` (silent by default). The client's
        connections go with the process; `aclose` is the way to close cleanly.
        """
        engine = getattr(self, "_engine", None)
        if engine is None:
            return
        warnings.warn(
            f"unclosed {self!r}: await its aclose() to close the client",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )
        engine.cancel()


def map_chat(
    ds: Any,
    *,
    model: str = "reka-flash",
    num_actors: int = 2,
    concurrency_per_actor: int = 32,
    batch_size: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    shared_limiter: bool = True,
    limiter: Any = None,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    max_retries: int = 2,
    timeout_s: float | None = None,
    include_record: bool = False,
    keep_input_columns: bool = False,
    circuit_breaker: bool = False,
    num_cpus_per_actor: float = 0.5,
    tasks_per_actor: int = 2,
    max_cost: float | None = None,
    cost_ledger: Any = None,
    prices: PriceTable | Mapping[str, Any] | None = None,
    media_tokens: int | None = None,
    message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
    **params: Any,
) -> Any:
    """Add one chat request per row of a Ray dataset; returns the mapped (lazy) Dataset.

    The rows need a ``prompt``, ``messages`` or ``request`` column (see `RekaChatMapper`);
    the result has `OUTPUT_COLUMNS`, one row per input row.

    Args:
        ds: a ``ray.data.Dataset``.
        model: model for rows naming none.
        num_actors: size of the actor pool.
        concurrency_per_actor: most requests in flight per actor.
        batch_size: rows per batch (default: enough batches in flight to keep
            ``concurrency_per_actor`` requests busy).
        rpm: the job's requests per minute. With ``shared_limiter`` (and more than one
            actor) a limiter actor shares it; otherwise each actor gets ``1 / num_actors``
            of it.
        tpm: the job's tokens per minute, shared or split the same way.
        shared_limiter: with more than one actor, start a shared actor: for ``rpm``/``tpm``
            when given, and in any case for the pacing each actor's client learns from the
            server's headers and 429s (the send rate and the pauses, shared by every
            actor; a client started afresh between an actor's batches starts at its share).
            ``False``: each actor paces alone.
        limiter: an existing limiter from `create_rate_limiter` (then no ``rpm``/``tpm``).
        api_key: the key; default ``REKA_API_KEY`` of the driver. It reaches the actors as a
            `Secret` constructor argument, never through the dataset or the environment.
        base_url: as in `RekaChatMapper`.
        max_retries: as in `RekaChatMapper`.
        timeout_s: as in `RekaChatMapper`.
        include_record: as in `RekaChatMapper`.
        keep_input_columns: as in `RekaChatMapper`.
        circuit_breaker: as in `RekaChatMapper` (off by default).
        num_cpus_per_actor: CPUs reserved per actor (the work is I/O-bound).
        tasks_per_actor: blocks an actor works on at once (Ray's ``max_concurrency``).
        max_cost: the job's budget in USD across every actor: each attempt reserves its bound
            (``run_job``'s ``max_cost``) from one cost actor, so the cost billed stays within
            it while the server bills no more than the bound.
        cost_ledger: an existing cost actor (``run_ray_job`` passes one that starts from
            the job's spend); default: a new one when ``max_cost`` is given.
        prices: as in ``BatchRunner``, under ``max_cost``.
        media_tokens: as in ``BatchRunner``, under ``max_cost``.
        message_overhead: as in ``BatchRunner``, under ``max_cost``.
        **params: chat parameters for every row (``max_tokens``, ``temperature``, ...).

    Raises:
        ImportError: Ray is not installed, or is older than 2.40.
        ValueError, InvalidRequestError, MissingAPIKeyError: as `RekaChatMapper`.
    """
    check_ray_version()  # before the limiter and cost actors start
    check_positive_int("num_actors", num_actors)
    check_positive_int("concurrency_per_actor", concurrency_per_actor)
    check_positive_int("tasks_per_actor", tasks_per_actor)
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    key = resolve_key(api_key)
    if limiter is None and shared_limiter and num_actors > 1:
        # The shared actor: the budget, when there is one, and the pacing the actors learn
        # from the server (its rate and its pauses shared by all of them) in any case.
        limiter = create_rate_limiter(rpm, tpm)
        rpm = tpm = None
    if max_cost is not None and cost_ledger is None:
        cost_ledger = create_cost_ledger(max_cost)
    kwargs: dict[str, Any] = {
        "model": model,
        "concurrency_per_actor": concurrency_per_actor,
        "api_key": key,
        "base_url": base_url,
        "rpm": rpm,
        "tpm": tpm,
        "num_actors": num_actors,
        "limiter": limiter,
        "max_retries": max_retries,
        "timeout_s": timeout_s,
        "circuit_breaker": circuit_breaker,
        "include_record": include_record,
        "keep_input_columns": keep_input_columns,
        **params,
    }
    if max_cost is not None:
        kwargs.update(
            max_cost=max_cost,
            cost_ledger=cost_ledger,
            prices=prices,
            media_tokens=media_tokens,
            message_overhead=message_overhead,
        )
    RekaChatMapper(**kwargs)  # validate here, on the driver, before any actor starts
    if batch_size is None:
        batch_size = default_batch_size(concurrency_per_actor, tasks_per_actor)
    return ds.map_batches(
        RekaChatMapper,
        fn_constructor_kwargs=kwargs,
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=num_cpus_per_actor,
        **_actor_pool_args(num_actors, tasks_per_actor),
    )


def _actor_pool_args(num_actors: int, tasks_per_actor: int) -> dict[str, Any]:
    """A fixed pool of ``num_actors``, each running ``tasks_per_actor`` blocks at once.

    Recent Ray names the per-actor concurrency ``max_concurrent_calls_per_actor`` (and
    deprecates the ``max_concurrency`` remote argument); older Ray only has the latter.
    """
    strategy = require("ray.data").ActorPoolStrategy
    params = inspect.signature(strategy).parameters
    if "max_concurrent_calls_per_actor" in params:
        compute = strategy(size=num_actors, max_concurrent_calls_per_actor=tasks_per_actor)
        return {"compute": compute}
    return {"compute": strategy(size=num_actors), "max_concurrency": tasks_per_actor}
