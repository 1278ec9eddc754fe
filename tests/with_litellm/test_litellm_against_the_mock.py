"""LiteLLM, as its users point it at an OpenAI-compatible base URL, against one default mock:
``get_valid_models`` with the mock's ``api_base``, a chat call and a stream. LiteLLM is a
large dependency tree: ``nox -s litellm`` installs the pinned version and runs this folder,
which the default tiers leave out (``--ignore=tests/with_litellm`` in pyproject's addopts)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

from reka_async.testing import MockRekaServer  # noqa: E402

KEY = "test-key"


@pytest.fixture
def server() -> Iterator[MockRekaServer]:
    with MockRekaServer.in_thread(api_key=KEY) as srv:
        yield srv


def test_get_valid_models_lists_the_mock_s_models(server: MockRekaServer) -> None:
    kwargs: dict[str, Any] = {"check_provider_endpoint": True, "custom_llm_provider": "openai"}
    if "api_base" in inspect.signature(litellm.get_valid_models).parameters:
        kwargs.update(api_base=server.base_url, api_key=KEY)
    else:  # newer releases take the endpoint in litellm_params
        from litellm.types.router import LiteLLM_Params

        kwargs["litellm_params"] = LiteLLM_Params(
            model="openai/reka-flash", api_base=server.base_url, api_key=KEY
        )
    models = litellm.get_valid_models(**kwargs)
    assert any(m.endswith("reka-flash") for m in models), models
    assert any(m.endswith("reka-flash-research") for m in models), models


def test_chat_through_litellm(server: MockRekaServer) -> None:
    response = litellm.completion(
        model="openai/reka-flash",
        api_base=server.base_url,
        api_key=KEY,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert response.choices[0].message.content == "Mock reply to: hi"
    assert server.requests[-1].path == "/v1/chat/completions"


def test_stream_through_litellm(server: MockRekaServer) -> None:
    chunks = litellm.completion(
        model="openai/reka-flash",
        api_base=server.base_url,
        api_key=KEY,
        messages=[{"role": "user", "content": "one two"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "Mock reply to: one two"
