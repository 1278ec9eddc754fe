"""What a batch costs: a price table per model, and the ``max_cost`` budget.

``PriceTable`` maps a model id to its ``Price`` (USD per million tokens, input and output).
Its defaults are the contract's published prices (Reka Flash $0.80/$2.00, Reka Edge
$0.10/$0.10, Reka Flash 3 $0.10/$0.20); ``with_models`` lays ``GET /models`` pricing over
them when the server gives it, and ``PriceTable({...})`` or ``load_prices(path)`` over both.
A dated id (``reka-flash-20240226``) takes its family's price when it has none of its own. A
model with no known price has an unknown cost: the stats say so instead of guessing.

``CostBudget`` enforces ``max_cost``: before each *attempt* it reserves the attempt's bound
(``bound.py``: input tokens at most the UTF-8 bytes of the request's JSON, ``media_tokens``
per media part and ``message_overhead`` per message; output tokens at most ``max_tokens``,
1024 when absent) at the model's prices; an attempt whose reservation would take spent +
reserved over the budget waits for the attempts in flight to settle; if it still does not
fit, the batch stops (``BudgetExceededError``, a ``BatchAbortedError``: the CLI exits 3 and
``--resume`` continues). Reservations go through the one accounting protocol
(``_http/accounting.py``): an error status or a request that was never sent gives its
reservation back, an answer settles it to its ``usage``, and an attempt whose fate is unknown
(a timeout, a dropped connection) keeps its bound; a retry is a new attempt, reserved again.

The guarantee: **while the server bills no more than the bound, the cost billed never exceeds
``max_cost``**, at any concurrency. An answer whose usage exceeds its bound proves the
assumption wrong: the batch stops at once (``UsageAboveBoundError``) and nothing more is sent,
so the overspend is at most what the attempts in flight when it arrived were billed above
their bounds (with ``concurrency`` c, at most c attempts: the one that broke the bound and
the c - 1 beside it).

A request the budget cannot bound is refused unsent: a model with no price
(``UnpricedModelError``) or a media part without ``media_tokens`` (``MediaTokensNeededError``);
both are recorded on the item, and a job's ``--retry-failed`` sends them again once the price
or the setting is given.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._exceptions import BatchAbortedError, InvalidRequestError
from .._serial import Serializable
from .bound import DEFAULT_MESSAGE_OVERHEAD, TokenBound, token_bound

if TYPE_CHECKING:
    from .._models import Model, Usage

__all__ = [
    "DEFAULT_PRICES",
    "BudgetExceededError",
    "CostBudget",
    "ItemCharge",
    "MediaTokensNeededError",
    "Price",
    "PriceTable",
    "UnpricedModelError",
    "UsageAboveBoundError",
    "load_prices",
]

_DATED: Final = re.compile(r"^(.*?)-(?:\d{8}|\d{4})$")


@attrs.frozen
class Price(Serializable):
    """USD per million tokens.

    Attributes:
        input: the price of a million input (prompt) tokens.
        output: the price of a million output (completion) tokens.
    """

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of ``input_tokens`` and ``output_tokens``."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


#: The contract's published prices (USD per million tokens).
DEFAULT_PRICES: Final[Mapping[str, Price]] = {
    "reka-flash": Price(0.80, 2.00),
    "reka-edge": Price(0.10, 0.10),
    "reka-flash-3": Price(0.10, 0.20),
}


def _coerce_price(model: str, value: Any) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping) and set(value) == {"input", "output"}:
        inp, out = value["input"], value["output"]
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        inp, out = value
    else:
        raise InvalidRequestError(
            f"prices: {model!r} must be {{'input': USD, 'output': USD}} per million tokens, "
            f"got {value!r}"
        )
    for what, number in (("input", inp), ("output", out)):
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
            or number < 0
        ):
            # NaN and infinities too: a NaN price makes every cost NaN, and NaN compares
            # false, so a max_cost budget would never stop anything.
            raise InvalidRequestError(
                f"prices: {model!r} {what} must be a finite number >= 0 (USD per million "
                f"tokens), got {number!r}"
            )
    return Price(float(inp), float(out))


class PriceTable:
    """Prices per model (see the module docstring).

    Args:
        prices: ``{model: Price | {"input": USD, "output": USD} | (input, output)}`` in USD
            per million tokens; these win over the defaults.
        defaults: start from ``DEFAULT_PRICES`` (default ``True``).

    Raises:
        InvalidRequestError: a price is not a pair of numbers >= 0.
    """

    def __init__(self, prices: Mapping[str, Any] | None = None, *, defaults: bool = True) -> None:
        self._prices: dict[str, Price] = dict(DEFAULT_PRICES) if defaults else {}
        for model, value in (prices or {}).items():
            self._prices[str(model)] = _coerce_price(str(model), value)

    def __repr__(self) -> str:
        return f"<PriceTable {len(self._prices)} models>"

    def get(self, model: str) -> Price | None:
        """The price of ``model`` (a dated id falls back to its family), or ``None``."""
        price = self._prices.get(model)
        if price is None:
            match = _DATED.match(model)
            if match is not None:
                price = self._prices.get(match.group(1))
        return price

    def cost(self, model: str, usage: Usage) -> float | None:
        """The USD cost of ``usage`` on ``model``, or ``None`` when its price is unknown."""
        price = self.get(model)
        return None if price is None else price.cost(usage.input_tokens, usage.output_tokens)

    def worst_case(
        self,
        body: Mapping[str, Any],
        *,
        message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
        media_tokens: int = 0,
    ) -> float | None:
        """The most a request ``body`` can cost under the bound's assumption (``bound.py``):
        its input bound at the input price plus its output bound (``max_tokens``, 1024 when
        absent) at the output price; ``None`` when the model has no price."""
        price = self.get(str(body.get("model", "")))
        if price is None:
            return None
        bound = token_bound(body, message_overhead=message_overhead, media_tokens=media_tokens)
        return price.cost(bound.input, bound.output)

    def with_models(self, models: Iterable[Model]) -> PriceTable:
        """A copy with the prices ``GET /models`` gave (per-token decimal strings) laid
        over this table's; models without pricing keep theirs."""
        table = PriceTable(self._prices, defaults=False)
        for model in models:
            pricing = model.pricing
            if pricing is None or pricing.prompt is None or pricing.completion is None:
                continue
            try:
                price = Price(float(pricing.prompt) * 1e6, float(pricing.completion) * 1e6)
            except ValueError:
                continue  # an unreadable price stays unknown rather than wrong
            table._prices[model.id] = price
        return table

    def with_prices(self, prices: Mapping[str, Any]) -> PriceTable:
        """A copy with ``prices`` (as in the constructor) laid over this table's."""
        table = PriceTable(self._prices, defaults=False)
        for model, value in prices.items():
            table._prices[str(model)] = _coerce_price(str(model), value)
        return table

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The table as ``{model: {"input": USD, "output": USD}}`` per million tokens."""
        return {m: {"input": p.input, "output": p.output} for m, p in sorted(self._prices.items())}


def load_prices(path: str) -> dict[str, Price]:
    """Read a prices file: JSON ``{model: {"input": USD, "output": USD}}`` per million tokens.

    Raises:
        InvalidRequestError: the file cannot be read or is not such a mapping.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise InvalidRequestError(f"prices file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidRequestError(f"prices file {path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(
            f'prices file {path}: expected {{"model": {{"input": USD, "output": USD}}}} per '
            f"million tokens, got a JSON {type(data).__name__}"
        )
    return {str(m): _coerce_price(str(m), v) for m, v in data.items()}


class BudgetExceededError(BatchAbortedError):
    """The ``max_cost`` budget stopped the batch before it could be exceeded."""


class UsageAboveBoundError(BudgetExceededError):
    """An answer was billed more than its reservation's bound: the server breaks the bound's
    assumption (``bound.py``), so the budget stopped the batch at once (module docstring).

    Attributes:
        usage_input, usage_output: the tokens the answer was billed.
        bound: the ``TokenBound`` it was reserved at.
    """

    def __init__(self, message: str, *, usage_input: int, usage_output: int, bound: TokenBound):
        super().__init__(message)
        self.usage_input = usage_input
        self.usage_output = usage_output
        self.bound = bound

    def __reduce__(self) -> Any:
        return (_rebuild_above, (str(self), self.usage_input, self.usage_output, self.bound))


def _rebuild_above(message: str, inp: int, out: int, bound: TokenBound) -> UsageAboveBoundError:
    return UsageAboveBoundError(message, usage_input=inp, usage_output=out, bound=bound)


class UnpricedModelError(InvalidRequestError):
    """Not sent: ``max_cost`` needs the model's price and none is known. Recorded with its own
    type, so a job's ``--retry-failed`` sends it again once ``--prices`` gives one."""


class MediaTokensNeededError(InvalidRequestError):
    """Not sent: the request holds media parts and ``max_cost`` cannot bound them without
    ``media_tokens=`` (``--media-tokens``); retried by ``--retry-failed`` like a price."""


def _check_tokens(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"{name}: must be a whole number of tokens >= 0"
            + (" or None" if allow_none else "")
            + f", got {value!r}"
        )


class CostBudget:
    """The ``max_cost`` budget: reservations of each in-flight attempt's bound (module
    docstring).

    A ``Budget`` (``_http/accounting.py``): the request loop reserves before every attempt
    and settles by the attempt's outcome, so a retry that may have been billed keeps the
    failed attempt's bound and reserves again.

    Args:
        max_cost: the budget in USD.
        prices: the price table.
        spent: USD already spent against this budget (a resumed job's records).
        media_tokens: the tokens a media part is reserved at; ``None``: a request with
            media parts is refused unsent (``MediaTokensNeededError``).
        message_overhead: the tokens per message the bound adds (``bound.py``).

    Raises:
        InvalidRequestError: an argument is out of range.
    """

    def __init__(
        self,
        max_cost: float,
        prices: PriceTable,
        *,
        spent: float = 0.0,
        media_tokens: int | None = None,
        message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
    ) -> None:
        if (
            isinstance(max_cost, bool)
            or not isinstance(max_cost, (int, float))
            or not math.isfinite(max_cost)
            or max_cost <= 0
        ):
            raise InvalidRequestError(
                f"max_cost: must be a positive number (USD), got {max_cost!r}"
            )
        _check_tokens("media_tokens", media_tokens, allow_none=True)
        _check_tokens("message_overhead", message_overhead, allow_none=False)
        if not math.isfinite(spent) or spent < 0:
            raise InvalidRequestError(f"spent: must be a finite number >= 0, got {spent!r}")
        self.max_cost = float(max_cost)
        self.prices = prices
        self.media_tokens = media_tokens
        self.message_overhead = message_overhead
        self.spent = float(spent)
        self.reserved = 0.0
        #: The first answer billed above its bound (``None`` while the assumption holds):
        #: once set, every reservation raises it.
        self.breach: UsageAboveBoundError | None = None
        self._in_flight = 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<CostBudget max_cost={self.max_cost:g} spent={self.spent:.6f} "
            f"reserved={self.reserved:.6f} in_flight={self._in_flight}>"
        )

    def _fits(self, amount: float) -> bool:
        return self.spent + self.reserved + amount <= self.max_cost + 1e-12

    def bound(self, body: Mapping[str, Any]) -> TokenBound:
        """The token bound ``body`` is reserved at (``bound.py``, with this budget's
        settings; a media part counts 0 when ``media_tokens`` is not set)."""
        return token_bound(
            body, message_overhead=self.message_overhead, media_tokens=self.media_tokens or 0
        )

    def check(self, body: Mapping[str, Any]) -> float:
        """The USD bound of ``body``, or the reason it cannot be sent under this budget.

        Raises:
            UnpricedModelError: the model has no known price.
            MediaTokensNeededError: it holds media parts and ``media_tokens`` is not set.
        """
        model = body.get("model")
        price = self.prices.get(str(model or ""))
        if price is None:
            raise UnpricedModelError(
                f"not sent: no price is known for model {model!r}, and max_cost needs one; "
                f"give its price (prices=, or --prices FILE) and retry it (--resume "
                f"--retry-failed)"
            )
        bound = self.bound(body)
        if bound.media_parts and self.media_tokens is None:
            raise MediaTokensNeededError(
                f"not sent: the request holds {bound.media_parts} media part(s), and no "
                f"source gives their token count, so max_cost cannot bound them; give the "
                f"most tokens a media part may be billed (media_tokens=, or --media-tokens N) "
                f"and retry it (--resume --retry-failed)"
            )
        return price.cost(bound.input, bound.output)

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Reserve ``body``'s bound, waiting for in-flight attempts to settle if needed.

        Returns:
            The amount reserved (give it back to ``settle``).

        Raises:
            UnpricedModelError, MediaTokensNeededError: it cannot be bounded (``check``).
            UsageAboveBoundError: an earlier answer broke the bound: nothing more is sent.
            BudgetExceededError: it cannot fit even with nothing else in flight.
        """
        return await self.reserve_amount(self.check(body or {}))

    async def reserve_amount(self, amount: float) -> float:
        """Reserve ``amount`` USD (a bound ``check`` computed), waiting for in-flight
        attempts to settle if needed: what ``reserve`` does once the body is priced (Ray's
        shared cost actor reserves amounts its workers priced).

        Returns:
            ``amount``.

        Raises:
            UsageAboveBoundError: an earlier answer broke the bound: nothing more is sent.
            BudgetExceededError: it cannot fit even with nothing else in flight.
        """
        while True:
            if self.breach is not None:
                raise self.breach
            if self._fits(amount):
                break
            if self._in_flight == 0:
                raise self.exceeded(amount)
            self._changed.clear()
            await self._changed.wait()
        self.reserved += amount
        self._in_flight += 1
        return amount

    def exceeded(self, amount: float) -> BudgetExceededError:
        """The error that stops the batch: a request of bound ``amount`` does not fit."""
        return BudgetExceededError(
            f"batch stopped: the budget max_cost=${self.max_cost:g} would be exceeded (spent "
            f"${self.spent:.4f}, the next request may cost up to ${amount:.4f}); raise "
            f"--max-cost and resume"
        )

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """The USD cost of an answer's ``usage`` (its model's price); an answer billed above
        its bound sets ``breach``, which stops every later reservation."""
        body = body or {}
        bound = self.bound(body)
        if self.breach is None and (
            usage.input_tokens > bound.input or usage.output_tokens > bound.output
        ):
            self.set_breach(self._above(usage, bound))
        cost = self.prices.cost(str(body.get("model", "")), usage)
        return 0.0 if cost is None else cost

    def set_breach(self, error: UsageAboveBoundError) -> None:
        """Record that an answer broke the bound (here, or on another of Ray's actors): every
        reservation from now on raises ``error``, the waiting ones included."""
        if self.breach is None:
            self.breach = error
        self._changed.set()

    def _above(self, usage: Usage, bound: TokenBound) -> UsageAboveBoundError:
        parts = []
        if usage.input_tokens > bound.input:
            raise_what = (
                "--media-tokens (media_tokens=) or --message-overhead (message_overhead=)"
                if bound.media_parts
                else "--message-overhead (message_overhead=)"
            )
            parts.append(
                f"{usage.input_tokens} input tokens for a bound of {bound.input}: raise "
                f"{raise_what}"
            )
        if usage.output_tokens > bound.output:
            parts.append(
                f"{usage.output_tokens} output tokens for max_tokens={bound.output}: the "
                f"server bills output beyond max_tokens (reasoning?), which no setting "
                f"bounds; max_cost cannot be guaranteed against it"
            )
        return UsageAboveBoundError(
            "batch stopped: an answer was billed above the bound max_cost reserves ("
            + "; ".join(parts)
            + "), so the budget's guarantee does not hold for this server; nothing more was "
            "sent; resume after changing the setting",
            usage_input=usage.input_tokens,
            usage_output=usage.output_tokens,
            bound=bound,
        )

    def settle(self, reserved: float, used: float | None) -> None:
        """Replace a reservation by the attempt's real cost (``None``: unknown, so its bound;
        ``0.0``: nothing was billed)."""
        self.reserved -= reserved
        self.spent += reserved if used is None else used
        self._in_flight -= 1
        self._changed.set()


class ItemCharge:
    """One batch worker's door to the ``CostBudget``: it delegates every call, and adds up
    what the item it is sending was charged (``charged``: each attempt's cost, or its bound
    when its fate is unknown), so a job can count what a failed or retried item may have
    cost (``BatchResult.charged_usd``). A worker sends one item at a time, so one
    ``ItemCharge`` per worker suffices; ``charged`` is reset before each item.

    Args:
        budget: the runner's cost budget.
    """

    __slots__ = ("budget", "charged")

    def __init__(self, budget: CostBudget) -> None:
        self.budget = budget
        self.charged = 0.0

    def __repr__(self) -> str:
        return f"<ItemCharge charged={self.charged:.6f} of {self.budget!r}>"

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """``CostBudget.reserve``."""
        return await self.budget.reserve(body)

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """``CostBudget.used``."""
        return self.budget.used(body, usage)

    def settle(self, reserved: float, used: float | None) -> None:
        """``CostBudget.settle``, counting the charge against the current item."""
        self.budget.settle(reserved, used)
        self.charged += reserved if used is None else used
