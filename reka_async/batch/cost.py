"""What a batch costs: a price table per model, and the ``max_cost`` budget.

``PriceTable`` maps a model id to its ``Price`` (USD per million tokens, input and output).
Its defaults are the contract's published prices (Reka Flash $0.80/$2.00, Reka Edge
$0.10/$0.10, Reka Flash 3 $0.10/$0.20); ``with_models`` lays ``GET /models`` pricing over
them when the server gives it, and ``PriceTable({...})`` or ``load_prices(path)`` over both.
A dated id (``reka-flash-20240226``) takes its family's price when it has none of its own. A
model with no known price has an unknown cost: the stats say so instead of guessing.

``CostBudget`` enforces ``max_cost``: before each request is sent it reserves the request's
worst case (its estimated input tokens at the input price plus ``max_tokens`` at the output
price) and a request whose reservation would take spent + reserved over the budget waits for
the requests in flight to settle; if it still does not fit, the batch stops
(``BudgetExceededError``, a ``BatchAbortedError``: the CLI exits 3 and ``--resume``
continues). When a response arrives its reservation is replaced by its real cost. A retry
that may bill twice (``RetryEvent.may_bill_twice``) charges the failed attempt at its worst
case and must fit a new reservation, or the item fails with ``BudgetExceededError``; so the
cost actually billed never exceeds ``max_cost``. Reservations are per attempt, through the one
accounting protocol (``_http/accounting.py``): an error status or a request that was never
sent gives its reservation back, an answer settles it to its cost, and an attempt whose fate
is unknown (a timeout, a dropped connection) keeps its worst case.
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
from .._http.budget import estimate_tokens
from .._serial import Serializable

if TYPE_CHECKING:
    from .._models import Model, Usage

__all__ = [
    "DEFAULT_PRICES",
    "BudgetExceededError",
    "CostBudget",
    "Price",
    "PriceTable",
    "load_prices",
]

#: The default ``max_tokens`` of the API (the contract): a request without one may use it.
DEFAULT_MAX_TOKENS: Final = 1024
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

    def worst_case(self, body: Mapping[str, Any]) -> float | None:
        """The most a request ``body`` can cost: estimated input tokens at the input price,
        plus ``max_tokens`` (the API's default 1024 when absent) at the output price."""
        price = self.get(str(body.get("model", "")))
        if price is None:
            return None
        max_tokens = int(body.get("max_tokens") or DEFAULT_MAX_TOKENS)
        input_tokens = estimate_tokens(body) - max_tokens
        return price.cost(input_tokens, max_tokens)

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


class CostBudget:
    """The ``max_cost`` budget: reservations of in-flight worst cases (module docstring).

    A ``Budget`` (``_http/accounting.py``): the request loop reserves before every attempt
    and settles by the attempt's outcome, so a retry that may have been billed keeps the
    failed attempt's worst case and reserves again.

    Args:
        max_cost: the budget in USD.
        prices: the price table.
    """

    def __init__(self, max_cost: float, prices: PriceTable) -> None:
        if isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or max_cost <= 0:
            raise InvalidRequestError(
                f"max_cost: must be a positive number (USD), got {max_cost!r}"
            )
        self.max_cost = float(max_cost)
        self.prices = prices
        self.spent = 0.0
        self.reserved = 0.0
        self._in_flight = 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<CostBudget max_cost={self.max_cost:g} spent={self.spent:.6f} "
            f"reserved={self.reserved:.6f} in_flight={self._in_flight}>"
        )

    def _fits(self, amount: float) -> bool:
        return self.spent + self.reserved + amount <= self.max_cost + 1e-12

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Reserve ``body``'s worst case, waiting for in-flight attempts to settle if needed.

        Returns:
            The amount reserved (give it back to ``settle``).

        Raises:
            InvalidRequestError: the model has no known price (the item fails, unsent).
            BudgetExceededError: it cannot fit even with nothing else in flight.
        """
        amount = self.prices.worst_case(body or {})
        if amount is None:
            model = None if body is None else body.get("model")
            raise InvalidRequestError(
                f"not sent: no price is known for model {model!r}, and max_cost "
                f"needs one; give its price (prices=, or --prices FILE)"
            )
        while not self._fits(amount):
            if self._in_flight == 0:
                raise self.exceeded(amount)
            self._changed.clear()
            await self._changed.wait()
        self.reserved += amount
        self._in_flight += 1
        return amount

    def exceeded(self, amount: float) -> BudgetExceededError:
        """The error that stops the batch: a request of worst case ``amount`` does not fit."""
        return BudgetExceededError(
            f"batch stopped: the budget max_cost=${self.max_cost:g} would be exceeded (spent "
            f"${self.spent:.4f}, the next request may cost up to ${amount:.4f}); raise "
            f"--max-cost and resume"
        )

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """The USD cost of an answer's ``usage`` (its model's price)."""
        cost = self.prices.cost(str((body or {}).get("model", "")), usage)
        return 0.0 if cost is None else cost

    def settle(self, reserved: float, used: float | None) -> None:
        """Replace a reservation by the attempt's real cost (``None``: unknown, so its worst
        case; ``0.0``: nothing was billed)."""
        self.reserved -= reserved
        self.spent += reserved if used is None else used
        self._in_flight -= 1
        self._changed.set()
