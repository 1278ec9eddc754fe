"""The mock's generation model: token deadlines that do not drift, what each event carries,
answers run to ``max_tokens``, the capacity gate, and the model over real sockets. No test
measures time: pacing is checked against a fake clock, capacity by the server's counters."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from reka_async import AsyncClient
from reka_async.testing import GenerationModel, MockRekaServer, MockServerProcess
from reka_async.testing._generation import Generator, _Gate, token_offsets, token_weights
from reka_async.testing._main import _generation, _parse_args
from reka_async.testing._native import NativeDialect
from reka_async.testing._openai import OpenAIDialect
from reka_async.testing._replies import Reply, make_reply
from reka_async.testing._sse import _paced

MODELS = frozenset({"reka-flash"})


def body(prompt: str = "hi there", **extra: Any) -> dict[str, Any]:
    return {"model": "reka-flash", "messages": [{"role": "user", "content": prompt}], **extra}


# --- the schedule ---------------------------------------------------------------------------


def test_token_k_is_due_at_ttft_plus_k_tokens_times_tpot() -> None:
    model = GenerationModel(ttft_s=0.25, prefill_s_per_token=0.001, tpot_s=0.01)
    offsets = token_offsets(model, 100, 1000, None)
    assert len(offsets) == 1000
    assert offsets[0] == pytest.approx(0.35)  # 250 ms + 100 input tokens x 1 ms
    assert offsets[999] == pytest.approx(0.35 + 9.99, abs=1e-12)  # no accumulated error
    assert token_offsets(model, 0, 0, None) == [0.25]  # an empty answer: the first deadline


def test_jitter_is_seeded_bounded_and_keeps_the_mean() -> None:
    model = GenerationModel(ttft_s=0.1, tpot_s=0.01, jitter=0.5)
    offsets = token_offsets(model, 0, 10_001, random.Random(1))
    assert offsets == token_offsets(model, 0, 10_001, random.Random(1))
    assert 0.05 <= offsets[0] <= 0.15
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert min(gaps) >= 0.005
    assert max(gaps) <= 0.015
    assert sum(gaps) / len(gaps) == pytest.approx(0.01, rel=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttft_s": -1}, "ttft_s"),
        ({"tpot_s": float("nan")}, "tpot_s"),
        ({"capacity": 0}, "capacity"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_invalid_generation_models_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerationModel(**kwargs)


class FakeClock:
    """A loop clock that advances only when slept on, and wakes every sleep 3 ms late."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.writes: list[tuple[float, bytes]] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay + 0.003

    async def write(self, data: bytes) -> None:
        self.writes.append((self.now, data))


async def test_paced_frames_leave_at_their_deadlines_without_drift(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "time", clock.time)
    monkeypatch.setattr(asyncio, "sleep", clock.sleep)
    frames = [b"%d" % i for i in range(100)] + [b"[DONE]"]
    deadlines = [1000.25 + k * 0.01 for k in range(100)]
    await _paced(clock, frames, deadlines)  # type: ignore[arg-type]
    times = [t for t, _ in clock.writes]
    # Each write is 3 ms late for its own deadline; chained sleeps would be 300 ms late
    # by the last one.
    assert times[-1] == pytest.approx(deadlines[-1] + 0.003)
    assert all(t == pytest.approx(d + 0.003) for t, d in zip(times, deadlines, strict=True))
    assert clock.writes[-1][1] == b"99[DONE]"  # what follows the last event goes with it


# --- what each event carries ----------------------------------------------------------------


def reply_of(max_tokens: int | None = None, *, openai: bool = False) -> Reply:
    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    return make_reply(body("one two three", **extra), lambda: "call_1", openai=openai)


@pytest.mark.parametrize("stream", ["cumulative", "delta"])
def test_native_events_carry_one_word_each(stream: str) -> None:
    dialect = NativeDialect(models=MODELS, stream=stream, trailer=True)  # type: ignore[arg-type]
    events = dialect.events("c", "reka-flash", reply_of(), None)
    weights = token_weights(events, native_cumulative=stream == "cumulative")
    assert weights == [1] * 6 + [0]  # "Mock reply to: one two three", then the usage trailer


def test_grouped_events_carry_their_words() -> None:
    reply = Generator(GenerationModel()).fill(reply_of(12), body(max_tokens=12))
    dialect = NativeDialect(models=MODELS, stream="cumulative", trailer=False)
    events = dialect.events("c", "reka-flash", reply, 4)
    assert token_weights(events, native_cumulative=True) == [3, 3, 3, 3]


def test_openai_events_count_reasoning_and_answer_words() -> None:
    dialect = OpenAIDialect(models=MODELS, reject_tool_role=False)
    research_body = {**body("what is new"), "model": "reka-flash-research"}
    reply = dialect.reply(research_body, lambda: "call_1")
    assert reply.research is not None
    events = dialect.events("c", "reka-flash-research", reply, None)
    weights = token_weights(events, native_cumulative=False)
    reasoning = len(reply.research.reasoning.split())
    assert sum(weights) == reasoning + reply.output_tokens
    assert weights[-1] == 0  # the usage chunk


def test_stream_deadlines_put_each_event_at_its_last_token() -> None:
    generator = Generator(GenerationModel(ttft_s=0.5, tpot_s=0.1))
    reply = generator.fill(reply_of(8), body(max_tokens=8))
    events = NativeDialect(models=MODELS, stream="cumulative", trailer=True).events(
        "c", "reka-flash", reply, 4
    )  # 4 events of 2 words, then a trailer
    due = generator.stream_deadlines(10.0, reply, events, native_cumulative=True)
    assert due == pytest.approx([10.6, 10.8, 11.0, 11.2, 11.2])


# --- answers run to max_tokens --------------------------------------------------------------


def test_replies_are_continued_up_to_max_tokens() -> None:
    generator = Generator(GenerationModel())
    filled = generator.fill(reply_of(50), body(max_tokens=50))
    assert filled.output_tokens == 50 == len(filled.text.split())
    assert filled.finish_reason == "length"
    assert filled.text.startswith("Mock reply to: one two three lorem")
    short = generator.fill(reply_of(3), body(max_tokens=3))
    assert short.output_tokens == 3  # cut by max_tokens as before
    assert generator.fill(reply_of(), body()).output_tokens == 6  # no max_tokens: the echo


def test_structured_and_tool_answers_keep_their_length() -> None:
    generator = Generator(GenerationModel())
    tools = [{"name": "f", "description": "", "parameters": {"type": "object"}}]
    call = make_reply(body(max_tokens=99, tools=tools, tool_choice="tool"), lambda: "c1")
    assert call.tool_calls is not None
    assert generator.fill(call, body(max_tokens=99)) == call
    plain = reply_of(99)
    assert (
        generator.fill(plain, body(max_tokens=99, response_format={"type": "json_object"})) == plain
    )


# --- capacity -------------------------------------------------------------------------------


async def test_the_gate_admits_capacity_holders_first_come_first_served() -> None:
    gate = _Gate(2)
    order: list[int] = []

    async def holder(i: int, release: asyncio.Event) -> None:
        await gate.acquire()
        order.append(i)
        await release.wait()
        gate.release()

    releases = [asyncio.Event() for _ in range(5)]
    tasks = [asyncio.create_task(holder(i, releases[i])) for i in range(5)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert (order, gate.active, len(gate.waiters)) == ([0, 1], 2, 3)
    releases[1].set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == [0, 1, 2]
    assert gate.active == 2
    tasks[3].cancel()  # a waiter that gives up leaves its place, not a slot
    for _ in range(3):
        await asyncio.sleep(0)
    releases[0].set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == [0, 1, 2, 4]
    assert gate.active == 2
    for event in releases:
        event.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert gate.active == 0
    assert not gate.waiters


# --- over real sockets ------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_streams_and_answers_run_to_max_tokens_over_http(api: str) -> None:
    async with (
        MockRekaServer(generation=GenerationModel(capacity=3)) as server,
        AsyncClient("test-key", server.base_url, api=api, max_retries=0) as client,  # type: ignore[arg-type]
    ):
        messages = [{"role": "user", "content": "a b c"}]
        deltas = [
            chunk.delta
            async for chunk in client.chat.create_stream(
                messages=messages, model="reka-flash", max_tokens=40
            )
            if chunk.delta
        ]
        assert len(deltas) == 40  # one event per token
        responses = await asyncio.gather(
            *(
                client.chat.create(messages=messages, model="reka-flash", max_tokens=17)
                for _ in range(8)
            )
        )
        assert {(r.usage.output_tokens, r.finish_reason) for r in responses} == {(17, "length")}
        assert {r.usage.input_tokens for r in responses} == {3}
        generation = server.generation
        assert generation is not None
        assert generation.started == 9
        assert 1 <= generation.max_active <= 3  # never above the capacity
        assert generation.active == 0
        assert generation.waiting == 0


def test_the_command_line_builds_the_generation_model() -> None:
    args = _parse_args(["--ttft-ms", "250", "--tpot-ms", "10", "--capacity", "8", "--seed", "4"])
    assert _generation(args) == GenerationModel(ttft_s=0.25, tpot_s=0.01, capacity=8, seed=4)
    assert _generation(_parse_args([])) is None  # no generation option: the old mock


def test_the_standalone_mock_refuses_a_bad_generation_model() -> None:
    server = MockServerProcess("--capacity", "0")
    with pytest.raises(RuntimeError, match="capacity must be at least 1"):
        server.start()
    assert server.process.returncode == 2
