"""One name for one thing: the old name of ``circuit_breaker`` is refused, not honoured."""

from __future__ import annotations

import pytest

from reka_async import AsyncClient, BatchRunner, InvalidRequestError


async def test_stop_on_insufficient_credits_is_refused_with_its_name() -> None:
    async with AsyncClient(api_key="k", base_url="http://127.0.0.1:1/v1") as client:
        with pytest.raises(InvalidRequestError, match="stop_on_insufficient_credits"):
            BatchRunner(client, stop_on_insufficient_credits=False)  # type: ignore[call-arg]
        assert BatchRunner(client, circuit_breaker=False).circuit_breaker is False
