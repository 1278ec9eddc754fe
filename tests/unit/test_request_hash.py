"""The one request identity (``reka_async._wire.hashing``): what changes it and what does not."""

from __future__ import annotations

from reka_async._wire.hashing import request_hash

BODY = {"model": "reka-flash", "messages": [{"role": "user", "content": "héllo"}], "seed": 1}


def test_same_question_same_hash_whatever_the_key_order_or_stream_flag() -> None:
    reordered = {"seed": 1, "messages": BODY["messages"], "model": "reka-flash", "stream": True}
    assert request_hash(BODY, api="native", host="api.reka.ai") == request_hash(
        reordered, api="native", host="API.reka.ai"
    )


def test_model_messages_parameters_dialect_and_host_each_change_it() -> None:
    base = request_hash(BODY, api="native", host="api.reka.ai")
    variants = [
        request_hash({**BODY, "model": "reka-core"}, api="native", host="api.reka.ai"),
        request_hash(
            {**BODY, "messages": [{"role": "user", "content": "hello"}]},
            api="native",
            host="api.reka.ai",
        ),
        request_hash({**BODY, "seed": 2}, api="native", host="api.reka.ai"),
        request_hash(BODY, api="openai", host="api.reka.ai"),
        request_hash(BODY, api="native", host="127.0.0.1"),
    ]
    assert len({base, *variants}) == 6
    assert base.startswith("sha256:")
    assert len(base) == len("sha256:") + 32
