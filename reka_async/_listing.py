"""``client.models``: the models this key may use (``GET /v1/models``), plain and with the raw
HTTP answer."""

from __future__ import annotations

import builtins
from collections.abc import Coroutine, Mapping
from typing import Any

from ._http import Hooks, TimeoutLike, Transport
from ._models import Model
from ._raw import Capture, RawResponse
from ._types import NOT_GIVEN, NotGiven
from ._wire import load_models

__all__ = ["AsyncModels", "AsyncModelsWithRawResponse"]


class AsyncModels:
    """``client.models``: the models this key may use (``with_raw_response.list()`` too).

    Args:
        transport: the client's request loop.
        bearer: send the OpenAI dialect's ``Authorization: Bearer`` header too (a client
            whose default dialect is ``"openai"``): a server that answers by caller, as the
            mock does, then sends the OpenAI list with the models' details. Every shape of
            the contract is read either way.
    """

    __slots__ = ("_bearer", "_transport", "with_raw_response")

    def __init__(self, transport: Transport, *, bearer: bool = False) -> None:
        self._transport = transport
        self._bearer = bearer
        self.with_raw_response = AsyncModelsWithRawResponse(self)

    async def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Model]:
        """List the available models.

        Args:
            timeout: as in ``chat.create``.
            max_retries: as in ``chat.create``.
            extra_headers: as in ``chat.create``.

        Returns:
            ``Model`` entries; ``model.id`` is the name to pass as ``model=``.
        """
        return await self._list(timeout, max_retries, extra_headers, None)

    def _list(
        self,
        timeout: TimeoutLike | NotGiven,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None,
        hooks: Hooks | None,
    ) -> Coroutine[Any, Any, builtins.list[Model]]:
        t = self._transport
        opts = t.default_options.override(
            timeout=timeout, max_retries=max_retries, extra_headers=extra_headers, hooks=hooks
        )
        call = t.call(
            "GET", "/models", body=None, opts=opts, parse=load_models, bearer=self._bearer
        )
        return t.send(call)

    get = list  # the official SDK's name


class AsyncModelsWithRawResponse:
    """``client.models.with_raw_response``: ``list()`` returning a ``RawResponse``."""

    __slots__ = ("_models",)

    def __init__(self, models: AsyncModels) -> None:
        self._models = models

    async def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> RawResponse[builtins.list[Model]]:
        """``models.list`` with the HTTP answer: ``raw.parse()`` is the ``Model`` list."""
        capture = Capture()
        hooks = Hooks(on_response=[capture])
        models = await self._models._list(timeout, max_retries, extra_headers, hooks)
        return capture.raw(models)
